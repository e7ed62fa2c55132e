import { z } from 'zod';

/** One RPC method: params (strict: unknown fields are a bad_request naming them), result, and when it is allowed. */
export interface MethodSpec<P extends z.ZodType, R extends z.ZodType> {
  params: P;
  result: R;
  summary: string;
}

export const method = <P extends z.ZodType, R extends z.ZodType>(spec: MethodSpec<P, R>) => spec;

/** Params of a method that takes none. */
export const noParams = z.strictObject({});

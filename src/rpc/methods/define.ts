import { z } from 'zod';

/** One RPC method: params (strict: unknown fields are a bad_request naming them), result, and when it is allowed. */
export interface MethodSpec<P extends z.ZodType, R extends z.ZodType> {
  params: P;
  result: R;
  summary: string;
}

/**
 * One method of a group, as a function that builds its spec. Groups are tables of these so that a process
 * builds only the schemas of the methods it uses (protocol.ts's `methods` calls each once, on first use):
 * building every method's zod schemas cost `banger vm list` about a fifth of its time (issue 20).
 */
export const method = <P extends z.ZodType, R extends z.ZodType>(
  spec: () => MethodSpec<P, R>,
): (() => MethodSpec<P, R>) => spec;

/** A group of methods, name -> the function building its spec. */
export type MethodGroup = Record<string, () => MethodSpec<z.ZodType, z.ZodType>>;

/** The built table of a group: each method's spec, built on first access and kept. */
export type BuiltMethods<G extends MethodGroup> = { readonly [K in keyof G]: ReturnType<G[K]> };

/** A table whose properties build their spec when first read (enumerable, own: Object.keys/hasOwn work). */
export function buildLazily<G extends MethodGroup>(group: G): BuiltMethods<G> {
  const table = {} as BuiltMethods<G>;
  for (const [name, build] of Object.entries(group)) {
    Object.defineProperty(table, name, {
      enumerable: true,
      configurable: true,
      get() {
        const spec = build();
        Object.defineProperty(table, name, {
          value: spec,
          enumerable: true,
          configurable: false,
          writable: false,
        });
        return spec;
      },
    });
  }
  return table;
}

/** Params of a method that takes none. */
export const noParams = z.strictObject({});

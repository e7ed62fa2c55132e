import { BangerError } from '../model/errors.js';
import type { ResultCheck } from './client.js';
import { methods, type Result } from './protocol.js';

/** A result checked against its method's schema (defaults applied); one this client cannot read is bad_version. */
export const checkResult: ResultCheck = (method, raw) => {
  const parsed = methods[method].result.safeParse(raw);
  if (!parsed.success) throw new BangerError('bad_version', `unexpected ${method} result from bangerd`);
  return parsed.data as Result<typeof method>;
};

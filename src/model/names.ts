import { badRequest } from './errors.js';

/** VM names are DNS labels: they become `<name>.vm` and hostnames. */
export function validateVmName(name: string): string {
  if (name.length === 0 || name.length > 63) {
    throw badRequest(`invalid VM name ${JSON.stringify(name)}: must be 1 to 63 characters`);
  }
  if (!/^[a-z0-9-]+$/.test(name)) {
    throw badRequest(`invalid VM name ${JSON.stringify(name)}: use only lowercase letters, digits and '-'`);
  }
  if (name.startsWith('-') || name.endsWith('-')) {
    throw badRequest(`invalid VM name ${JSON.stringify(name)}: must not start or end with '-'`);
  }
  return name;
}

/**
 * Image and kernel names become directory names and appear in tool scripts: letters, digits, `.`, `-`, `_`,
 * starting with a letter or digit, so no traversal (`..`) and no option-like names (`-x`).
 */
export function validateArtifactName(kind: 'image' | 'kernel', name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name) || name.includes('..')) {
    throw badRequest(`invalid ${kind} name ${JSON.stringify(name)}`, {
      hint: "use letters, digits, '.', '-' and '_', starting with a letter or digit (at most 128)",
    });
  }
  return name;
}

import type { McpLimits } from '../limits.js';
import type { AnyTool } from '../tool.js';
import { imageListTool } from './image-list.js';
import { imagePullTool } from './image-pull.js';
import { vmCreateTool } from './vm-create.js';
import { vmDeleteTool } from './vm-delete.js';
import { vmExecTool } from './vm-exec.js';
import { vmListTool } from './vm-list.js';
import { vmPortsTool } from './vm-ports.js';
import { vmReadFileTool } from './vm-read-file.js';
import { vmRunTool } from './vm-run.js';
import { vmWriteFileTool } from './vm-write-file.js';

/** Every tool the server offers, in the order tools/list shows them. */
export const allTools = (limits: McpLimits): AnyTool[] => [
  vmRunTool(limits),
  vmCreateTool(),
  vmExecTool(limits),
  vmReadFileTool(),
  vmWriteFileTool(),
  vmListTool(),
  vmPortsTool(),
  vmDeleteTool(),
  imageListTool(),
  imagePullTool(),
];

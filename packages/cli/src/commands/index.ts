/**
 * Every mailark command, in the order --help lists them. To add one: write commands/<verb>.ts
 * exporting a defineCommand(...) object and add it to this array (one line).
 */
import type { MailarkCommand } from '../command.js';
import { backup } from './backup.js';
import { check } from './check.js';
import { diff } from './diff.js';
import { exportCommand } from './export.js';
import { find } from './find.js';
import { forget } from './forget.js';
import { init } from './init.js';
import { key } from './key.js';
import { ls } from './ls.js';
import { prune } from './prune.js';
import { repair } from './repair.js';
import { restore } from './restore.js';
import { snapshots } from './snapshots.js';
import { stats } from './stats.js';
import { unlock } from './unlock.js';
import { verifyExportCommand } from './verify-export.js';

export const commands: MailarkCommand[] = [
  init,
  backup,
  snapshots,
  ls,
  diff,
  find,
  restore,
  exportCommand,
  verifyExportCommand,
  forget,
  prune,
  check,
  stats,
  unlock,
  key,
  repair,
];

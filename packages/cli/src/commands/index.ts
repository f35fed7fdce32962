/**
 * Every mailark command, in the order --help lists them. To add one: write commands/<verb>.ts
 * exporting a defineCommand(...) object and add it to this array (one line).
 */
import type { MailarkCommand } from '../command.js';
import { findCommand } from './find.js';

export const commands: MailarkCommand[] = [findCommand];

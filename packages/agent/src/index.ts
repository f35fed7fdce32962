/**
 * @mailark/agent: the unattended backup daemon (`mailark-agent`). Front end only: every operation it
 * schedules is a core function (runBackup, forgetSnapshots, checkRepository, pruneRepository).
 */
export { Agent, type AgentOptions } from './agent.js';
export { type AgentConfig, loadAgentConfig, parseAgentConfig, type TenantConfig } from './agent-config.js';
export { AGENT_VERSION, runAgentCli } from './main.js';
export { parseMetrics, renderMetrics } from './metrics.js';

/**
 * @scriptrunner/react — hooks and drop-in components over @scriptrunner/client. Import the styles
 * once: `import '@scriptrunner/react/styles.css'`.
 */
export { ScriptRunnerProvider, useScriptRunnerClient } from './context.js';
export { useScripts, useExecution, useExecutionLogs } from './hooks.js';
export type { UseScriptsOptions, UseExecutionLogsOptions, ExecutionLogsState } from './hooks.js';
export { ScriptUploadCard } from './ScriptUploadCard.js';
export type { ScriptUploadCardProps } from './ScriptUploadCard.js';
export { ScriptList, parseArgs } from './ScriptList.js';
export type { ScriptListProps } from './ScriptList.js';
export { ExecutionLogView } from './ExecutionLogView.js';
export type { ExecutionLogViewProps } from './ExecutionLogView.js';
export { LogLines } from './LogLines.js';
export type { LogLinesProps } from './LogLines.js';
export { ExecutionHistory, ScriptSource } from './ExecutionHistory.js';
export type { ExecutionHistoryProps } from './ExecutionHistory.js';
export { ArtifactList } from './ArtifactList.js';
export type { ArtifactListProps } from './ArtifactList.js';
export { useExecutions, useArtifacts, useScriptSource } from './history.js';
export type { UseExecutionsOptions } from './history.js';
export { progressPercent } from './time.js';
export type { TimestampMode } from './time.js';
export { AnsiText, stripAnsi } from './ansi.js';

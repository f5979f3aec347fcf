import pkg from './ambit.js'

export const {
  Authorizer,
  ManualClock,
  Decision,
  AmbitDenied,
  guard,
  guardTool,
  guardTools,
  guardMcpServer,
  authorizeToolCall,
  verifyAuditLog,
  formatUid,
  denyCauses,
  errorCodes,
} = pkg
export default pkg

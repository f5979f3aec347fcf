import pkg from './ambit.js'

export const {
  Authorizer,
  ManualClock,
  IssuerKey,
  Uid,
  Decision,
  AmbitDenied,
  guard,
  guardTool,
  guardTools,
  guardMcpServer,
  authorizeToolCall,
  verifyAuditLog,
  jwkThumbprint,
  formatUid,
  denyCauses,
  errorCodes,
} = pkg
export default pkg

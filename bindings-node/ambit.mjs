import pkg from './ambit.js'

export const {
  Authorizer,
  ManualClock,
  Decision,
  AmbitDenied,
  guard,
  guardTool,
  guardTools,
  authorizeToolCall,
  verifyAuditLog,
  formatUid,
  denyCauses,
  errorCodes,
} = pkg
export default pkg

import pkg from './ambit.js'

export const {
  Authorizer,
  ManualClock,
  AmbitDenied,
  guard,
  guardTool,
  authorizeToolCall,
  verifyAuditLog,
  formatUid,
  denyCauses,
  errorCodes,
} = pkg
export default pkg

//! Device compliance (product brief sections 3 and 4): device records, Graph compliance
//! policies, Defender risk, tenant settings, and the pure evaluation that turns them into a
//! `ComplianceState` with reason codes. Owns no I/O beyond parsing text it is handed.

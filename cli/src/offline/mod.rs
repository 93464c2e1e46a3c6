//! The commands that work on files alone and talk to no CA: checking an audit
//! log or an export of it and exporting it for a SIEM ([`audit`]), and checking
//! and trying out a policy file ([`policy`]). They use no session and no key,
//! so an auditor can run them on a copy far from the CA.

pub mod audit;
pub mod policy;

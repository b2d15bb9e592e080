//! Who is asking, and from which device (product brief section 2): verified JWTs with a moka
//! cache, mTLS device certificates, trusted headers.

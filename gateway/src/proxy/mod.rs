//! The reverse proxy: listeners and connections (`server`), routing (`route`), the request
//! stages (`gateway`), forwarding (`upstream`, `pool`, `h1`, `headers`), and every response the gateway
//! writes itself (`respond`). It does the I/O; decisions come from the pure core.

pub mod added;
pub mod batched;
pub mod body;
pub mod gateway;
pub mod guid_headers;
pub mod h1;
pub mod h1_server;
pub mod headers;
pub mod policy_counters;
pub mod pool;
pub mod prefixed;
pub mod respond;
pub mod response_timer;
pub mod revocable;
pub mod route;
pub mod run;
pub mod server;
pub mod tls;
pub mod upgrade;
pub mod upstream;

pub use gateway::{ConnInfo, Gateway};
pub use run::{start, Running, StartError};

//! The stand-ins' pages and JSON documents, each showing what the app received.

use http::HeaderMap;
use serde_json::{json, Value};

use super::App;

/// The forwarding and identity headers a request arrived with.
pub struct Seen {
    pairs: Vec<(String, String)>,
}

impl Seen {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut pairs: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                k == "host"
                    || k.starts_with("x-forwarded-")
                    || k == "x-request-id"
                    || k.starts_with("x-portcullis-")
            })
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        pairs.sort();
        Self { pairs }
    }

    pub fn json(&self) -> Value {
        Value::Object(
            self.pairs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    fn html_table(&self) -> String {
        let rows: String = self
            .pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "<tr><th>{}</th><td><code>{}</code></td></tr>",
                    escape(k),
                    escape(v)
                )
            })
            .collect();
        format!("<h2>What this app received from the gateway</h2><table>{rows}</table>")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str, seen: &Seen) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em}}th{{text-align:left;padding-right:1em}}</style></head>\
<body><h1>{t}</h1>{body}{table}</body></html>\n",
        t = escape(title),
        table = seen.html_table()
    )
}

pub fn index(app: App, seen: &Seen) -> String {
    let links = match app {
        App::Sharepoint => "<ul><li><a href=\"/sites/contoso/\">/sites/contoso/</a></li><li><a href=\"/_api/web/lists\">/_api/web/lists</a></li></ul>",
        App::Exchange => "<ul><li><a href=\"/owa/\">/owa/</a></li><li><a href=\"/api/v2.0/me/messages\">/api/v2.0/me/messages</a></li></ul>",
    };
    page(app.title(), links, seen)
}

pub fn sharepoint_site(path: &str, seen: &Seen) -> String {
    let site = path
        .trim_start_matches("/sites/")
        .split('/')
        .next()
        .unwrap_or("");
    let body = format!(
        "<p>Site <strong>{}</strong></p><ul><li>Documents (42 items)</li><li>Site Pages (7 items)</li><li>Announcements (3 items)</li></ul>",
        escape(site)
    );
    page("SharePoint Online (stand-in)", &body, seen)
}

pub fn sharepoint_lists(seen: &Seen) -> Value {
    json!({
        "value": [
            { "Id": "8f2e9b1c-1a2b-4c3d-9e8f-0a1b2c3d4e5f", "Title": "Documents", "BaseTemplate": 101, "ItemCount": 42 },
            { "Id": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e6f", "Title": "Site Pages", "BaseTemplate": 119, "ItemCount": 7 },
            { "Id": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f70", "Title": "Announcements", "BaseTemplate": 104, "ItemCount": 3 }
        ],
        "received": seen.json()
    })
}

pub fn exchange_mailbox(seen: &Seen) -> String {
    let body = "<p>Inbox (3 unread)</p><ul><li>Quarterly results (Megan Bowen)</li><li>Team offsite (Alex Wilber)</li><li>Your device needs an update (IT)</li></ul>";
    page("Outlook on the web (stand-in)", body, seen)
}

pub fn exchange_messages(seen: &Seen) -> Value {
    json!({
        "value": [
            { "Id": "AAMkAGI2TG93AAA=", "Subject": "Quarterly results", "From": "megan@contoso.example", "IsRead": false },
            { "Id": "AAMkAGI2TG94AAA=", "Subject": "Team offsite", "From": "alex@contoso.example", "IsRead": false },
            { "Id": "AAMkAGI2TG95AAA=", "Subject": "Your device needs an update", "From": "it@contoso.example", "IsRead": true }
        ],
        "received": seen.json()
    })
}

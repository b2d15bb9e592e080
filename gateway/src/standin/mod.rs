//! Stand-in apps for SharePoint Online and Exchange Online.

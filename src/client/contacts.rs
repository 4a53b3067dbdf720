//! Contacts: `/contacts…` and `/on-whatsapp/{phone}`, plus the [`Page`] list
//! type shared with groups.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::transport::{segment, ApiRequest};
use super::types::ActionResult;
use super::WasenderSyncClient;
use crate::error::Result;
use crate::event::wire::wire_object;
use crate::event::{Contact, NumberOrString};

wire_object! {
    /// Paging details of a list answer (`pagination`, or Laravel-style
    /// `current_page`/`last_page` members).
    pub struct Pagination {
        /// The page returned (1-based).
        "page" => page: NumberOrString,
        /// How many pages there are.
        "totalPages" => total_pages: NumberOrString,
        /// How many items there are.
        "total" => total: NumberOrString,
        /// Items per page.
        "limit" => limit: NumberOrString,
        /// The page returned (Laravel style).
        "current_page" => current_page: NumberOrString,
        /// How many pages there are (Laravel style).
        "last_page" => last_page: NumberOrString,
        /// Items per page (Laravel style).
        "per_page" => per_page: NumberOrString,
    }
}

impl Pagination {
    /// Whether a later page exists, when the answer says.
    pub fn has_next_page(&self) -> Option<bool> {
        let page = self
            .page
            .as_ref()
            .or(self.current_page.as_ref())?
            .as_u64()?;
        let last = self
            .total_pages
            .as_ref()
            .or(self.last_page.as_ref())?
            .as_u64()?;
        Some(page < last)
    }
}

/// A list answer: the items, and paging details when the API sent them.
///
/// Accepts a bare array (`data: [...]`) or an object with `items` (or `data`)
/// and `pagination` (or Laravel-style page members).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Paging details, when sent.
    pub pagination: Option<Pagination>,
    /// Other members of an object answer.
    pub extra: serde_json::Map<String, Value>,
}

impl<T: Serialize> Serialize for Page<T> {
    /// Serialises as `{items, pagination?, …extra}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("items", &self.items)?;
        if let Some(pagination) = &self.pagination {
            map.serialize_entry("pagination", pagination)?;
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            pagination: None,
            extra: serde_json::Map::new(),
        }
    }
}

impl<T> Page<T> {
    /// Iterates over the items.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// How many items this page holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether this page holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a Page<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

fn items<T: DeserializeOwned, E: serde::de::Error>(values: Vec<Value>) -> Result<Vec<T>, E> {
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(E::custom))
        .collect()
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Page<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Self::default()),
            Value::Array(values) => Ok(Self {
                items: items(values)?,
                ..Self::default()
            }),
            Value::Object(mut map) => {
                let list = match map.remove("items").or_else(|| map.remove("data")) {
                    Some(Value::Array(values)) => items(values)?,
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => return Err(D::Error::custom("list items are not an array")),
                };
                let pagination = match map.remove("pagination") {
                    Some(value) => Some(serde_json::from_value(value).map_err(D::Error::custom)?),
                    None if map.contains_key("current_page") || map.contains_key("last_page") => {
                        Some(
                            serde_json::from_value(Value::Object(map.clone()))
                                .map_err(D::Error::custom)?,
                        )
                    }
                    None => None,
                };
                Ok(Self {
                    items: list,
                    pagination,
                    extra: map,
                })
            }
            _ => Err(D::Error::custom("expected a list or an object with items")),
        }
    }
}

wire_object! {
    /// A profile picture answer (contacts and groups).
    pub struct ProfilePicture {
        /// The picture URL.
        "profilePictureUrl" => profile_picture_url: String,
        /// The picture URL, as some answers name it.
        "imgUrl" => img_url: String,
        /// The picture URL, as some answers name it.
        "url" => url: String,
    }
}

impl ProfilePicture {
    /// The picture URL, whichever member carried it (`None`: no picture).
    pub fn url(&self) -> Option<&str> {
        self.profile_picture_url
            .as_deref()
            .or(self.img_url.as_deref())
            .or(self.url.as_deref())
    }
}

wire_object! {
    /// What `GET /on-whatsapp/{phone}` answers in `data`.
    pub struct OnWhatsApp {
        /// Whether the number is on WhatsApp.
        "exists" => exists: bool,
        /// The number's JID, when it exists.
        "jid" => jid: String,
    }
}

impl OnWhatsApp {
    /// Whether the number is on WhatsApp (`false` when the answer does not say).
    pub fn is_on_whatsapp(&self) -> bool {
        self.exists.unwrap_or(false)
    }
}

impl WasenderSyncClient {
    /// All contacts of the session (`GET /contacts`).
    pub fn get_contacts(&self) -> Result<Page<Contact>> {
        self.execute(ApiRequest::get("/contacts"))?.data()
    }

    /// One page of contacts (`GET /contacts?paginated=true&page=…&limit=…`);
    /// `page` is 1-based.
    pub fn get_contacts_page(&self, page: u32, limit: u32) -> Result<Page<Contact>> {
        let request = ApiRequest::get("/contacts")
            .query("paginated", "true")
            .query("page", page)
            .query("limit", limit);
        self.execute(request)?.data()
    }

    /// One contact (`GET /contacts/{jid}`); `jid` may be a phone number.
    pub fn get_contact_info(&self, jid: &str) -> Result<Contact> {
        self.execute(ApiRequest::get(format!("/contacts/{}", segment(jid))))?
            .data()
    }

    /// A contact's profile picture URL (`GET /contacts/{jid}/profile-picture`).
    pub fn get_contact_profile_picture(&self, jid: &str) -> Result<ProfilePicture> {
        let path = format!("/contacts/{}/profile-picture", segment(jid));
        self.execute(ApiRequest::get(path))?.data()
    }

    /// Blocks a contact (`POST /contacts/{jid}/block`).
    pub fn block_contact(&self, jid: &str) -> Result<ActionResult> {
        let path = format!("/contacts/{}/block", segment(jid));
        self.execute(ApiRequest::post(path).idempotent(true))?
            .whole()
    }

    /// Unblocks a contact (`POST /contacts/{jid}/unblock`).
    pub fn unblock_contact(&self, jid: &str) -> Result<ActionResult> {
        let path = format!("/contacts/{}/unblock", segment(jid));
        self.execute(ApiRequest::post(path).idempotent(true))?
            .whole()
    }

    /// Whether a phone number has WhatsApp (`GET /on-whatsapp/{phone}`).
    pub fn check_if_on_whatsapp(&self, phone: &str) -> Result<OnWhatsApp> {
        self.execute(ApiRequest::get(format!("/on-whatsapp/{}", segment(phone))))?
            .data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_accept_arrays_and_paginated_objects() {
        let bare: Page<Contact> =
            serde_json::from_value(serde_json::json!([{"jid": "1"}])).expect("array");
        assert_eq!(bare.len(), 1);
        assert!(bare.pagination.is_none());
        let paged: Page<Contact> = serde_json::from_value(serde_json::json!({
            "items": [{"jid": "1"}, {"jid": "2"}],
            "pagination": {"page": 1, "totalPages": 3}
        }))
        .expect("object");
        assert_eq!(paged.len(), 2);
        assert_eq!(paged.pagination.and_then(|p| p.has_next_page()), Some(true));
        let laravel: Page<Contact> = serde_json::from_value(serde_json::json!({
            "data": [{"jid": "1"}], "current_page": 2, "last_page": 2
        }))
        .expect("laravel");
        assert_eq!(
            laravel.pagination.and_then(|p| p.has_next_page()),
            Some(false)
        );
    }
}

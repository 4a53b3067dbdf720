//! Contacts: `contacts.upsert`, `contacts.update`.

use super::wire::wire_object;

wire_object! {
    /// A contact.
    pub struct Contact {
        /// The contact's JID (documented examples also show bare digits).
        "jid" => jid: String,
        /// The contact's id, as some payloads name the JID.
        "id" => id: String,
        /// The contact's LID.
        "lid" => lid: String,
        /// The name saved in the address book.
        "name" => name: String,
        /// The name the contact set for themselves.
        "notify" => notify: String,
        /// A verified business name.
        "verifiedName" => verified_name: String,
        /// The contact's about/status text.
        "status" => status: String,
        /// Profile picture URL (or `changed`/`removed`).
        "imgUrl" => img_url: String,
    }
}

impl Contact {
    /// The JID, from `jid` or `id`.
    pub fn jid(&self) -> Option<&str> {
        self.jid.as_deref().or(self.id.as_deref())
    }
    /// The best name to show: saved name, else notify name, else verified name.
    pub fn display_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .or(self.notify.as_deref())
            .or(self.verified_name.as_deref())
    }
}

//! Groups: `groups.upsert`, `groups.update`, `group-participants.update`.

use serde::de::MapAccess;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::wire::{loose_bool, read_object, wire_object, Lenient, NumberOrString};

wire_object! {
    /// A participant given as an object.
    pub struct ParticipantInfo {
        /// The participant's JID.
        "jid" => jid: String,
        /// The participant's JID, as some payloads name it.
        "id" => id: String,
        /// The participant's LID.
        "lid" => lid: String,
        /// The participant's phone JID.
        "phoneNumber" => phone_number: String,
        /// Whether they are an admin.
        "isAdmin" => is_admin: bool,
        /// Whether they are the super admin (creator).
        "isSuperAdmin" => is_super_admin: bool,
        /// `admin`, `superadmin` or null, as Baileys sends it.
        "admin" => admin: String,
    }
}

/// A group participant: sent either as a bare JID string or as an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Participant {
    /// A bare JID.
    Jid(String),
    /// An object with the JID and roles.
    Detailed(ParticipantInfo),
}

impl Participant {
    /// The participant's JID, whichever shape.
    pub fn jid(&self) -> Option<&str> {
        match self {
            Self::Jid(jid) => Some(jid),
            Self::Detailed(info) => info.jid.as_deref().or(info.id.as_deref()),
        }
    }

    /// Whether the participant is an admin (or super admin), when the payload says.
    pub fn is_admin(&self) -> Option<bool> {
        match self {
            Self::Jid(_) => None,
            Self::Detailed(info) => info
                .is_admin
                .or_else(|| info.extra.get("isAdmin").and_then(loose_bool))
                .or_else(|| {
                    info.admin
                        .as_ref()
                        .map(|a| a == "admin" || a == "superadmin")
                })
                .or(info.is_super_admin),
        }
    }
}

impl Serialize for Participant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Jid(jid) => serializer.serialize_str(jid),
            Self::Detailed(info) => info.serialize(serializer),
        }
    }
}

impl Lenient for Participant {
    fn from_string(s: String) -> Result<Self, String> {
        Ok(Self::Jid(s))
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Result<Self, Value>, A::Error> {
        read_object(map).map(|info| Ok(Self::Detailed(info)))
    }
}

wire_object! {
    /// Group metadata, as `groups.upsert` / `groups.update` carry it.
    pub struct GroupMetadata {
        /// The group JID (`…@g.us`).
        "jid" => jid: String,
        /// The group JID, as some payloads name it.
        "id" => id: String,
        /// The group's name.
        "subject" => subject: String,
        /// When the group was created (seconds).
        "creation" => creation: NumberOrString,
        /// The creator's JID.
        "owner" => owner: String,
        /// The description.
        "desc" => desc: String,
        /// The members.
        "participants" => participants: Vec<Participant>,
        /// Whether only admins may send.
        "announce" => announce: bool,
        /// Whether only admins may edit the group info.
        "restrict" => restrict: bool,
        /// Member count.
        "size" => size: NumberOrString,
    }
}

impl GroupMetadata {
    /// The group JID, from `jid` or `id`.
    pub fn jid(&self) -> Option<&str> {
        self.jid.as_deref().or(self.id.as_deref())
    }
}

wire_object! {
    /// The `data` of `group-participants.update`.
    pub struct GroupParticipantsUpdate {
        /// The group JID.
        "jid" => jid: String,
        /// The group JID, as some payloads name it.
        "id" => id: String,
        /// Who was affected.
        "participants" => participants: Vec<Participant>,
        /// `add`, `remove`, `promote` or `demote`.
        "action" => action: String,
        /// Who did it.
        "author" => author: String,
    }
}

/// What happened to the participants of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParticipantAction {
    /// Joined or were added.
    Add,
    /// Left or were removed.
    Remove,
    /// Became admins.
    Promote,
    /// Stopped being admins.
    Demote,
    /// Something else, as received.
    Unknown(String),
}

impl GroupParticipantsUpdate {
    /// The group JID, from `jid` or `id`.
    pub fn group_jid(&self) -> Option<&str> {
        self.jid.as_deref().or(self.id.as_deref())
    }

    /// The action (`action`), parsed case-insensitively.
    pub fn action_parsed(&self) -> Option<ParticipantAction> {
        let raw = self.action.as_deref()?;
        Some(match raw.trim().to_ascii_lowercase().as_str() {
            "add" => ParticipantAction::Add,
            "remove" => ParticipantAction::Remove,
            "promote" => ParticipantAction::Promote,
            "demote" => ParticipantAction::Demote,
            _ => ParticipantAction::Unknown(raw.to_owned()),
        })
    }

    /// The affected participants (empty if none were sent).
    pub fn participants(&self) -> &[Participant] {
        self.participants.as_deref().unwrap_or(&[])
    }
}

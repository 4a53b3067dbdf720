//! Groups: `/groups…`.

use serde::Serialize;
use serde_json::{json, Value};

use super::contacts::{Page, ProfilePicture};
use super::transport::{segment, ApiRequest};
use super::types::{ActionResult, Extra};
use super::WasenderSyncClient;
use crate::error::{Result, WasenderError};
use crate::event::wire::wire_object;
use crate::event::{GroupMetadata, Participant, ParticipantAction, ParticipantInfo};

/// Group settings for [`WasenderSyncClient::update_group_settings`]; only the
/// settings you set are sent.
///
/// ```
/// use wasenderapi::client::GroupSettings;
/// let settings = GroupSettings::new().subject("Team").announce(true);
/// assert_eq!(
///     serde_json::to_value(&settings).unwrap(),
///     serde_json::json!({"subject": "Team", "announce": true})
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSettings {
    body: Extra,
}

impl Serialize for GroupSettings {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

impl GroupSettings {
    /// No change yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The group's name (`subject`).
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.with_field("subject", subject.into())
    }

    /// The group's description (`description`).
    pub fn description(self, description: impl Into<String>) -> Self {
        self.with_field("description", description.into())
    }

    /// Only admins may send messages (`announce`).
    pub fn announce(self, only_admins_send: bool) -> Self {
        self.with_field("announce", only_admins_send)
    }

    /// Only admins may edit the group's info (`restrict`).
    pub fn restrict(self, only_admins_edit: bool) -> Self {
        self.with_field("restrict", only_admins_edit)
    }

    /// Sets any setting, e.g. one this crate does not model yet.
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.body.insert(name.into(), value.into());
        self
    }
}

wire_object! {
    /// What `GET /groups/{jid}/invite-link` answers.
    pub struct GroupInviteLink {
        /// The invite link.
        "link" => link: String,
        /// The invite link, as some answers name it.
        "inviteLink" => invite_link: String,
        /// The invite link, as some answers name it.
        "url" => url: String,
        /// The invite code.
        "code" => code: String,
    }
}

impl GroupInviteLink {
    /// The link, whichever member carried it.
    pub fn url(&self) -> Option<&str> {
        self.link
            .as_deref()
            .or(self.invite_link.as_deref())
            .or(self.url.as_deref())
    }
}

/// The `{participants}` body of the participant calls; `call` names the
/// method in the error for an empty list.
fn participant_list(call: &str, participants: &[&str]) -> Result<Value> {
    if participants.is_empty() {
        return Err(WasenderError::InvalidArgument(format!(
            "{call}: participants is empty; give at least one"
        )));
    }
    Ok(json!({ "participants": participants }))
}

fn action_name(action: &ParticipantAction) -> &str {
    match action {
        ParticipantAction::Add => "add",
        ParticipantAction::Remove => "remove",
        ParticipantAction::Promote => "promote",
        ParticipantAction::Demote => "demote",
        ParticipantAction::Unknown(raw) => raw.trim(),
    }
}

/// Participants as listed by `/groups/{jid}/participants`: JID strings or objects.
fn participants_from(value: Value) -> Result<Vec<Participant>, serde_json::Error> {
    let values = match value {
        Value::Array(values) => values,
        Value::Object(mut map) => match map.remove("participants") {
            Some(Value::Array(values)) => values,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    values
        .into_iter()
        .map(|v| match v {
            Value::String(jid) => Ok(Participant::Jid(jid)),
            other => serde_json::from_value::<ParticipantInfo>(other).map(Participant::Detailed),
        })
        .collect()
}

impl WasenderSyncClient {
    /// The groups the session is in (`GET /groups`).
    pub fn get_groups(&self) -> Result<Page<GroupMetadata>> {
        self.execute(ApiRequest::get("/groups"))?.data()
    }

    /// Creates a group (`POST /groups` with `{name, participants}`). Not
    /// retried after an ambiguous failure unless the policy opts in.
    pub fn create_group(&self, name: &str, participants: &[&str]) -> Result<GroupMetadata> {
        let body = json!({ "name": name, "participants": participants });
        self.execute(ApiRequest::post("/groups").json(&body)?)?
            .data()
    }

    /// A group's metadata (`GET /groups/{jid}/metadata`).
    pub fn get_group_metadata(&self, group_jid: &str) -> Result<GroupMetadata> {
        let path = format!("/groups/{}/metadata", segment(group_jid));
        self.execute(ApiRequest::get(path))?.data()
    }

    /// A group's participants (`GET /groups/{jid}/participants`).
    pub fn get_group_participants(&self, group_jid: &str) -> Result<Vec<Participant>> {
        let path = format!("/groups/{}/participants", segment(group_jid));
        let reply = self.execute(ApiRequest::get(path))?;
        let data: Value = reply.data()?;
        participants_from(data).map_err(|e| {
            reply.decode_error("the participants are not a list of participants", Some(e))
        })
    }

    /// Adds participants (`POST /groups/{jid}/participants/add`).
    pub fn add_group_participants(
        &self,
        group_jid: &str,
        participants: &[&str],
    ) -> Result<ActionResult> {
        let path = format!("/groups/{}/participants/add", segment(group_jid));
        let request = ApiRequest::post(path)
            .idempotent(true)
            .json(&participant_list("add_group_participants", participants)?)?;
        self.execute(request)?.whole()
    }

    /// Removes participants (`POST /groups/{jid}/participants/remove`).
    pub fn remove_group_participants(
        &self,
        group_jid: &str,
        participants: &[&str],
    ) -> Result<ActionResult> {
        let path = format!("/groups/{}/participants/remove", segment(group_jid));
        let request = ApiRequest::post(path)
            .idempotent(true)
            .json(&participant_list(
                "remove_group_participants",
                participants,
            )?)?;
        self.execute(request)?.whole()
    }

    /// Promotes or demotes participants (`PUT /groups/{jid}/participants/update`
    /// with `{action, participants}`).
    pub fn update_group_participants(
        &self,
        group_jid: &str,
        action: &ParticipantAction,
        participants: &[&str],
    ) -> Result<ActionResult> {
        let name = action_name(action);
        if name.is_empty() {
            return Err(WasenderError::InvalidArgument(
                "update_group_participants: the participant action is empty".into(),
            ));
        }
        let mut body = participant_list("update_group_participants", participants)?;
        if let Some(object) = body.as_object_mut() {
            object.insert("action".into(), name.into());
        }
        let path = format!("/groups/{}/participants/update", segment(group_jid));
        self.execute(ApiRequest::put(path).json(&body)?)?.whole()
    }

    /// Changes a group's settings (`PUT /groups/{jid}/settings`).
    pub fn update_group_settings(
        &self,
        group_jid: &str,
        settings: &GroupSettings,
    ) -> Result<ActionResult> {
        let path = format!("/groups/{}/settings", segment(group_jid));
        self.execute(ApiRequest::put(path).json(settings)?)?.whole()
    }

    /// Leaves a group (`POST /groups/{jid}/leave`).
    pub fn leave_group(&self, group_jid: &str) -> Result<ActionResult> {
        let path = format!("/groups/{}/leave", segment(group_jid));
        self.execute(ApiRequest::post(path).idempotent(true))?
            .whole()
    }

    /// A group's invite link (`GET /groups/{jid}/invite-link`).
    pub fn get_group_invite_link(&self, group_jid: &str) -> Result<GroupInviteLink> {
        let path = format!("/groups/{}/invite-link", segment(group_jid));
        self.execute(ApiRequest::get(path))?.data()
    }

    /// What an invite code leads to (`GET /groups/invite/{code}`).
    pub fn get_group_invite_info(&self, invite_code: &str) -> Result<GroupMetadata> {
        let path = format!("/groups/invite/{}", segment(invite_code));
        self.execute(ApiRequest::get(path))?.data()
    }

    /// Joins a group by invite code (`POST /groups/invite/accept` with `{code}`).
    pub fn accept_group_invite(&self, invite_code: &str) -> Result<ActionResult> {
        let request = ApiRequest::post("/groups/invite/accept")
            .idempotent(true)
            .json(&json!({ "code": invite_code }))?;
        self.execute(request)?.whole()
    }

    /// A group's picture URL (`GET /groups/{jid}/picture`).
    pub fn get_group_profile_picture(&self, group_jid: &str) -> Result<ProfilePicture> {
        let path = format!("/groups/{}/picture", segment(group_jid));
        self.execute(ApiRequest::get(path))?.data()
    }
}

//! The lenient, lossless decoding machinery shared by every event type.
//!
//! Every modelled member is decoded straight from the parser (one pass, no
//! intermediate `Value`) when it has the expected shape. When it does not — a
//! number where a string was documented, `null`, an array where an object was
//! expected — the member is kept verbatim in the owning object's `extra` map
//! instead of failing the event, so serialising gives back what was received.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// A type that can be decoded from any JSON value, falling back to the raw
/// value when the shape does not fit. Each hook returns the typed value, or
/// gives the input back (as a `Value`) when it does not fit.
pub trait Lenient: Sized {
    /// From a JSON string.
    fn from_string(s: String) -> Result<Self, String> {
        Err(s)
    }
    /// From a JSON boolean.
    fn from_bool(_b: bool) -> Option<Self> {
        None
    }
    /// From a JSON number.
    fn from_number(_n: &Number) -> Option<Self> {
        None
    }
    /// From a JSON object.
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Result<Self, Value>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Err)
    }
    /// From a JSON array.
    fn from_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Result<Self, Value>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Err)
    }
    /// Decodes the next value into `slot`: `Some` when it fits, else `slot`
    /// is `None` and the value is given back as JSON. Objects override it to
    /// fill the slot in place, so a large struct is not moved through layers
    /// of `Result`s on its way into its parent.
    fn fill<'de, D: Deserializer<'de>>(
        slot: &mut Option<Self>,
        d: D,
    ) -> Result<Option<Value>, D::Error> {
        match d.deserialize_any(LenientSeed::<Self>::new())? {
            Ok(value) => {
                *slot = Some(value);
                Ok(None)
            }
            Err(raw) => {
                *slot = None;
                Ok(Some(raw))
            }
        }
    }
    /// Decodes the next value onto the end of `items` when it fits, else gives
    /// it back as JSON (`items` unchanged). Objects override it to decode in
    /// place in the vector.
    fn push<'de, D: Deserializer<'de>>(
        items: &mut Vec<Self>,
        d: D,
    ) -> Result<Option<Value>, D::Error> {
        let mut one = None;
        let raw = Self::fill(&mut one, d)?;
        items.extend(one);
        Ok(raw)
    }
}

/// Decodes the next value into an `Option` slot through [`Lenient::fill`].
pub(crate) struct SlotSeed<'a, T>(pub(crate) &'a mut Option<T>);

impl<'de, T: Lenient> DeserializeSeed<'de> for SlotSeed<'_, T> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::fill(self.0, d)
    }
}

/// Decodes the next array element onto a vector through [`Lenient::push`].
struct PushSeed<'a, T>(&'a mut Vec<T>);

impl<'de, T: Lenient> DeserializeSeed<'de> for PushSeed<'_, T> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::push(self.0, d)
    }
}

/// [`Lenient::fill`] for objects: decodes straight into a default value in `slot`.
pub(crate) fn fill_object<'de, T: WireObject, D: Deserializer<'de>>(
    slot: &mut Option<T>,
    d: D,
) -> Result<Option<Value>, D::Error> {
    let raw = d.deserialize_any(FillSeed(slot.insert(T::default())))?;
    if raw.is_some() {
        *slot = None;
    }
    Ok(raw)
}

/// [`Lenient::push`] for objects: decodes straight into a default value at the end of `items`.
pub(crate) fn push_object<'de, T: WireObject, D: Deserializer<'de>>(
    items: &mut Vec<T>,
    d: D,
) -> Result<Option<Value>, D::Error> {
    let index = items.len();
    items.push(T::default());
    let raw = d.deserialize_any(FillSeed(&mut items[index]))?;
    if raw.is_some() {
        items.truncate(index);
    }
    Ok(raw)
}

/// Decodes a `T` leniently from any deserializer.
pub(crate) fn lenient<'de, T: Lenient, D: Deserializer<'de>>(
    d: D,
) -> Result<Result<T, Value>, D::Error> {
    d.deserialize_any(LenientSeed::<T>(PhantomData))
}

/// A `DeserializeSeed`/`Visitor` that yields `Ok(T)` or the raw `Value`.
pub(crate) struct LenientSeed<T>(pub(crate) PhantomData<T>);

impl<T> LenientSeed<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: Lenient> DeserializeSeed<'de> for LenientSeed<T> {
    type Value = Result<T, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Lenient> Visitor<'de> for LenientSeed<T> {
    type Value = Result<T, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(T::from_bool(b).ok_or(Value::Bool(b)))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(number::<T>(Number::from(n)))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(number::<T>(Number::from(n)))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(match Number::from_f64(n) {
            Some(n) => number::<T>(n),
            None => Err(Value::Null),
        })
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.visit_string(s.to_owned())
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(T::from_string(s).map_err(Value::String))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(Value::Null))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        lenient::<T, D>(d)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::from_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::from_seq(seq)
    }
}

fn number<T: Lenient>(n: Number) -> Result<T, Value> {
    T::from_number(&n).ok_or(Value::Number(n))
}

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// A JSON object with modelled members and an `extra` map for everything else.
pub trait WireObject: Default {
    /// Takes the value of member `key` from `map`, into a field or `extra`.
    fn accept<'de, A: MapAccess<'de>>(
        &mut self,
        key: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error>;
    /// Writes every member (modelled, then extra).
    fn write_members<M: SerializeMap>(&self, out: &mut M) -> Result<(), M::Error>;
    /// How many members `write_members` writes.
    fn member_count(&self) -> usize;
}

/// Decodes a whole object into `T` (helper for `Lenient::from_map`).
pub(crate) fn read_object<'de, T: WireObject, A: MapAccess<'de>>(
    mut map: A,
) -> Result<T, A::Error> {
    let mut out = T::default();
    while let Some(key) = map.next_key_seed(KeySeed)? {
        out.accept(key, &mut map)?;
    }
    Ok(out)
}

/// Reads the next value leniently into `slot`, or into `extra[key]` when it does not fit.
pub(crate) fn accept_member<'de, T: Lenient, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    extra: &mut Map<String, Value>,
    key: Cow<'de, str>,
    map: &mut A,
) -> Result<(), A::Error> {
    let raw = map.next_value_seed(SlotSeed(slot))?;
    settle(raw, extra, key);
    Ok(())
}

/// Reads the next value verbatim into `extra[key]`.
pub(crate) fn accept_extra<'de, A: MapAccess<'de>>(
    extra: &mut Map<String, Value>,
    key: Cow<'de, str>,
    map: &mut A,
) -> Result<(), A::Error> {
    let value: Value = map.next_value()?;
    extra.insert(key.into_owned(), value);
    Ok(())
}

/// How a member's value is taken from the parser into its `Option` slot:
/// objects are filled in place (no large moves), other types by value.
/// A value that does not fit goes to `extra[key]` and leaves the slot `None`.
pub trait Field: Sized {
    /// Takes the next value of `map` into `slot`, or into `extra[key]`.
    fn accept_field<'de, A: MapAccess<'de>>(
        slot: &mut Option<Self>,
        extra: &mut Map<String, Value>,
        key: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error>;
}

macro_rules! by_value_field {
    ($(impl<$($g:ident: $bound:path),+> $ty:ty),* $(,)?) => {$(
        impl<$($g: $bound + serde::Serialize),+> $crate::event::wire::Field for $ty {
            $crate::event::wire::by_value_field!(@body);
        }
    )*};
    ($($ty:ty),* $(,)?) => {$(
        impl $crate::event::wire::Field for $ty {
            $crate::event::wire::by_value_field!(@body);
        }
    )*};
    (@body) => {
        fn accept_field<'de, A: serde::de::MapAccess<'de>>(
            slot: &mut Option<Self>,
            extra: &mut serde_json::Map<String, serde_json::Value>,
            key: std::borrow::Cow<'de, str>,
            map: &mut A,
        ) -> Result<(), A::Error> {
            $crate::event::wire::accept_member(slot, extra, key, map)
        }
    };
}
by_value_field!(String, bool, NumberOrString, Value);
by_value_field!(impl<T: Lenient> Vec<T>, impl<T: Lenient> OneOrMany<T>);
pub(crate) use by_value_field;

impl<T: WireObject> Field for Box<T> {
    fn accept_field<'de, A: MapAccess<'de>>(
        slot: &mut Option<Self>,
        extra: &mut Map<String, Value>,
        key: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let target = slot.insert(Box::default());
        let raw = map.next_value_seed(FillSeed(&mut **target))?;
        if raw.is_some() {
            *slot = None;
        }
        settle(raw, extra, key);
        Ok(())
    }
}

/// Files what a member's decoding gave back: nothing (the field took the
/// value, so an earlier unfitting value of a repeated member is dropped from
/// `extra`), or the raw value, kept in `extra[key]`.
fn settle(raw: Option<Value>, extra: &mut Map<String, Value>, key: Cow<'_, str>) {
    match raw {
        None => {
            if !extra.is_empty() {
                extra.remove(key.as_ref());
            }
        }
        Some(raw) => {
            extra.insert(key.into_owned(), raw);
        }
    }
}

/// Fills a [`WireObject`] in place from a JSON object; any other value is
/// returned as raw JSON (the target is then left as it was).
pub(crate) struct FillSeed<'a, T>(pub(crate) &'a mut T);

impl<'de, T: WireObject> DeserializeSeed<'de> for FillSeed<'_, T> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: WireObject> Visitor<'de> for FillSeed<'_, T> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.0.accept(key, &mut map)?;
        }
        Ok(None)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Some(Value::Bool(b)))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(Value::from(n)))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(Value::from(n)))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Some(Number::from_f64(n).map_or(Value::Null, Value::Number)))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(Value::String(s.to_owned())))
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Some(Value::String(s)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some(Value::Null))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Some)
    }
}

/// Serialises a [`WireObject`] as a JSON object.
pub(crate) fn serialize_object<T: WireObject, S: Serializer>(
    obj: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(obj.member_count()))?;
    obj.write_members(&mut map)?;
    map.end()
}

/// Declares a lenient, lossless JSON object type: every listed member is an
/// `Option` field decoded from its wire name; all others land in `extra`.
macro_rules! wire_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $wire:literal => $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[doc = concat!("\n\nWire name: `", $wire, "`.")]
                pub $field: Option<$ty>,
            )*
            /// Members not modelled above, exactly as received, including modelled
            /// members whose value had an unexpected shape (they are kept here and
            /// the field above is `None`).
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl $crate::event::wire::WireObject for $name {
            fn accept<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: std::borrow::Cow<'de, str>,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match key.as_ref() {
                    $(
                        $wire => <$ty as $crate::event::wire::Field>::accept_field(&mut self.$field, &mut self.extra, key, map),
                    )*
                    _ => $crate::event::wire::accept_extra(&mut self.extra, key, map),
                }
            }

            fn write_members<M: serde::ser::SerializeMap>(&self, out: &mut M) -> Result<(), M::Error> {
                $(
                    if let Some(value) = &self.$field {
                        out.serialize_entry($wire, value)?;
                    }
                )*
                for (key, value) in &self.extra {
                    out.serialize_entry(key, value)?;
                }
                Ok(())
            }

            fn member_count(&self) -> usize {
                0 $( + usize::from(self.$field.is_some()) )* + self.extra.len()
            }
        }

        impl $crate::event::wire::Field for $name {
            fn accept_field<'de, A: serde::de::MapAccess<'de>>(
                slot: &mut Option<Self>,
                extra: &mut serde_json::Map<String, serde_json::Value>,
                key: std::borrow::Cow<'de, str>,
                map: &mut A,
            ) -> Result<(), A::Error> {
                $crate::event::wire::accept_member(slot, extra, key, map)
            }
        }

        impl $crate::event::wire::Lenient for $name {
            fn from_map<'de, A: serde::de::MapAccess<'de>>(
                map: A,
            ) -> Result<Result<Self, serde_json::Value>, A::Error> {
                $crate::event::wire::read_object(map).map(Ok)
            }
            fn fill<'de, D: serde::Deserializer<'de>>(
                slot: &mut Option<Self>,
                d: D,
            ) -> Result<Option<serde_json::Value>, D::Error> {
                $crate::event::wire::fill_object(slot, d)
            }
            fn push<'de, D: serde::Deserializer<'de>>(
                items: &mut Vec<Self>,
                d: D,
            ) -> Result<Option<serde_json::Value>, D::Error> {
                $crate::event::wire::push_object(items, d)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::event::wire::serialize_object(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                match $crate::event::wire::lenient::<Self, D>(d)? {
                    Ok(value) => Ok(value),
                    Err(_) => Err(<D::Error as serde::de::Error>::custom(concat!(
                        "expected a JSON object for ",
                        stringify!($name)
                    ))),
                }
            }
        }
    };
}
pub(crate) use wire_object;

impl Lenient for String {
    fn from_string(s: String) -> Result<Self, String> {
        Ok(s)
    }
}

impl Lenient for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

impl Lenient for Value {
    fn from_string(s: String) -> Result<Self, String> {
        Ok(Value::String(s))
    }
    fn from_bool(b: bool) -> Option<Self> {
        Some(Value::Bool(b))
    }
    fn from_number(n: &Number) -> Option<Self> {
        Some(Value::Number(n.clone()))
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Result<Self, Value>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Ok)
    }
    fn from_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Result<Self, Value>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Ok)
    }
}

/// Turns an already-decoded value back into JSON (used when a later sibling does not fit).
fn to_raw<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("wire types only have string keys, so they always serialise")
}

impl<T: Lenient + Serialize> Lenient for Vec<T> {
    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Result<Self, Value>, A::Error> {
        let mut typed = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(PushSeed(&mut typed))? {
            match item {
                None => {}
                Some(raw) => {
                    // One element does not fit: keep the whole array verbatim.
                    let mut all: Vec<Value> = typed.iter().map(to_raw).collect();
                    all.push(raw);
                    while let Some(rest) = seq.next_element::<Value>()? {
                        all.push(rest);
                    }
                    return Ok(Err(Value::Array(all)));
                }
            }
        }
        Ok(Ok(typed))
    }
}

/// A member documented sometimes as a single value and sometimes as an array.
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany<T> {
    /// A single value (sent without an array around it).
    One(T),
    /// An array of values.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice, whichever shape was received.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }

    /// Iterates over the values.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there is no value (an empty array).
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl<'a, T> IntoIterator for &'a OneOrMany<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(one) => one.serialize(serializer),
            Self::Many(many) => many.serialize(serializer),
        }
    }
}

impl<T: Lenient + Serialize> Lenient for OneOrMany<T> {
    fn from_string(s: String) -> Result<Self, String> {
        T::from_string(s).map(Self::One)
    }
    fn from_bool(b: bool) -> Option<Self> {
        T::from_bool(b).map(Self::One)
    }
    fn from_number(n: &Number) -> Option<Self> {
        T::from_number(n).map(Self::One)
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Result<Self, Value>, A::Error> {
        Ok(T::from_map(map)?.map(Self::One))
    }
    fn from_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Result<Self, Value>, A::Error> {
        Ok(Vec::<T>::from_seq(seq)?.map(Self::Many))
    }
    fn fill<'de, D: Deserializer<'de>>(
        slot: &mut Option<Self>,
        d: D,
    ) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(OneOrManySlot(slot))
    }
}

/// [`Lenient::fill`] for [`OneOrMany`]: a single object is decoded with its
/// type's own `fill` (in place), an array element by element in place.
struct OneOrManySlot<'a, T>(&'a mut Option<OneOrMany<T>>);

impl<T> OneOrManySlot<'_, T> {
    fn store(self, decoded: Result<OneOrMany<T>, Value>) -> Option<Value> {
        match decoded {
            Ok(value) => {
                *self.0 = Some(value);
                None
            }
            Err(raw) => {
                *self.0 = None;
                Some(raw)
            }
        }
    }
}

impl<'de, T: Lenient + Serialize> Visitor<'de> for OneOrManySlot<'_, T> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut one = None;
        let raw = T::fill(&mut one, MapAccessDeserializer::new(map))?;
        *self.0 = one.map(OneOrMany::One);
        Ok(raw)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let decoded = Vec::<T>::from_seq(seq)?.map(OneOrMany::Many);
        Ok(self.store(decoded))
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        let decoded = LenientSeed::<OneOrMany<T>>::new().visit_bool(b)?;
        Ok(self.store(decoded))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        let decoded = LenientSeed::<OneOrMany<T>>::new().visit_i64(n)?;
        Ok(self.store(decoded))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        let decoded = LenientSeed::<OneOrMany<T>>::new().visit_u64(n)?;
        Ok(self.store(decoded))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        let decoded = LenientSeed::<OneOrMany<T>>::new().visit_f64(n)?;
        Ok(self.store(decoded))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        let decoded = LenientSeed::<OneOrMany<T>>::new().visit_str(s)?;
        Ok(self.store(decoded))
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
        let decoded = LenientSeed::<OneOrMany<T>>::new().visit_string(s)?;
        Ok(self.store(decoded))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.store(Err(Value::Null)))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.store(Err(Value::Null)))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A value documented as a number that is sometimes sent as a string (or the reverse).
///
/// It serialises back exactly as received: a number stays a number, a string stays a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberOrString {
    /// Sent as a JSON number (any size serde_json can represent, including `u64` beyond `i64`).
    Number(Number),
    /// Sent as a JSON string.
    String(String),
}

impl NumberOrString {
    /// The value as `i64`, parsing a string (surrounding blanks ignored, a fraction truncated).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(f64_to_i64)),
            Self::String(s) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(f64_to_i64))
            }
        }
    }

    /// The value as `u64`, parsing a string.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            Self::String(s) => s.trim().parse().ok(),
        }
    }

    /// The value as `f64`, parsing a string.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => n.as_f64(),
            Self::String(s) => s.trim().parse().ok(),
        }
    }

    /// The string form of the value (a number is formatted as JSON would).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Self::Number(n) => Cow::Owned(n.to_string()),
            Self::String(s) => Cow::Borrowed(s),
        }
    }
}

fn f64_to_i64(f: f64) -> Option<i64> {
    (f.is_finite() && f.abs() < 9.2e18).then_some(f as i64)
}

impl fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => fmt::Display::fmt(n, f),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl Serialize for NumberOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => n.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl Lenient for NumberOrString {
    fn from_string(s: String) -> Result<Self, String> {
        Ok(Self::String(s))
    }
    fn from_number(n: &Number) -> Option<Self> {
        Some(Self::Number(n.clone()))
    }
}

/// Reads a loosely typed boolean: `true`/`false`, `"true"`/`"false"`, `1`/`0`.
pub(crate) fn loose_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_or_string_reads_both() {
        let s = NumberOrString::String(" 12345 ".into());
        assert_eq!(s.as_i64(), Some(12345));
        let n = NumberOrString::Number(Number::from(u64::MAX));
        assert_eq!(n.as_u64(), Some(u64::MAX));
        assert_eq!(n.as_i64(), None);
    }
}

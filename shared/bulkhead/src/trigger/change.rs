//! A change of one item, as a DynamoDB stream record reports it.
//!
//! The record is read only as far as the trigger needs. Its images are read straight into
//! the ACL's own types ([`crate::store::item_json`]): no attribute maps are built, copied or
//! dropped. Where the trigger knows those types ([`super::ImageTypes`]) they are read as the
//! batch is read; elsewhere they stay the record's DynamoDB JSON text until the ACL reads
//! them.

use super::StreamRecord;
use crate::store::{Item, Key, item_json};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::any::Any;
use std::cell::Cell;
use std::fmt;

/// What a stream record says happened to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// An item's image in a stream record: its DynamoDB JSON, read on demand; or, where the
/// trigger knows the type its ACL reads the image as ([`super::ImageTypes`]), that value,
/// read as the batch was read, and handed over by the first read.
pub struct Image(Form);

enum Form {
    Text(Box<RawValue>),
    Read(Cell<Option<Box<dyn Any + Send>>>),
}

impl Image {
    /// An image from its DynamoDB JSON, which must be a map.
    pub fn from_json(json: Box<RawValue>) -> std::result::Result<Image, String> {
        match json.get().starts_with('{') {
            true => Ok(Image(Form::Text(json))),
            false => Err("an image is a map of attributes".into()),
        }
    }

    /// The image of an item, as a stream record would hold it.
    pub fn of(item: &Item) -> Result<Image> {
        Ok(Image(Form::Text(serde_json::value::to_raw_value(item)?)))
    }

    /// An image already read as its ACL's type.
    pub(super) fn read_as<T: Send + 'static>(value: T) -> Image {
        Image(Form::Read(Cell::new(Some(Box::new(value)))))
    }

    /// The image read as `T`, with the rules of [`crate::store::from_item`]. An image the
    /// trigger read already is handed over once, and only as the type it was read as.
    pub fn read<T: DeserializeOwned + 'static>(&self) -> Result<T> {
        match &self.0 {
            Form::Text(json) => item_json::from_str(json.get()),
            Form::Read(value) => match value.take().map(|value| value.downcast::<T>()) {
                Some(Ok(value)) => Ok(*value),
                Some(Err(other)) => {
                    value.set(Some(other));
                    Err(Error::Malformed(format!(
                        "this image was read as the trigger's ImageTypes say, not as {}",
                        std::any::type_name::<T>()
                    )))
                }
                None => Err(Error::Malformed("this image was read already".into())),
            },
        }
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Form::Text(json) => f.debug_tuple("Image").field(json).finish(),
            Form::Read(_) => f.write_str("Image(read)"),
        }
    }
}

/// A decoded stream record: the item's key, and its images before and after.
#[derive(Debug)]
pub struct Change {
    pub kind: ChangeKind,
    pub key: Key,
    pub old: Option<Image>,
    pub new: Option<Image>,
}

impl Change {
    /// The change a stream record describes. Its key and images are moved out of the
    /// record; the rest of the record (its sequence number and time) stays. A record without
    /// the images its kind needs is malformed (one without its key did not decode). An image
    /// is checked only when it is read, so an ACL that passes over a record by its key reads
    /// none of it.
    pub fn take_from(record: &mut StreamRecord) -> Result<Change> {
        let kind = match record.event_name.as_str() {
            "INSERT" => ChangeKind::Insert,
            "MODIFY" => ChangeKind::Modify,
            "REMOVE" => ChangeKind::Remove,
            other => return Err(Error::Malformed(format!("unknown event name {other:?}"))),
        };
        let change = Change {
            kind,
            key: std::mem::take(&mut record.dynamodb.keys),
            old: record.dynamodb.old_image.take(),
            new: record.dynamodb.new_image.take(),
        };
        let consistent = match kind {
            ChangeKind::Insert => change.new.is_some(),
            ChangeKind::Modify => change.new.is_some() && change.old.is_some(),
            ChangeKind::Remove => change.old.is_some(),
        };
        if !consistent {
            return Err(Error::Malformed(format!(
                "{kind:?} record without its images"
            )));
        }
        Ok(change)
    }

    /// The item's partition key.
    pub fn pk(&self) -> &str {
        &self.key.pk
    }

    pub fn new_as<T: DeserializeOwned + 'static>(&self) -> Result<Option<T>> {
        self.new.as_ref().map(Image::read).transpose()
    }

    pub fn old_as<T: DeserializeOwned + 'static>(&self) -> Result<Option<T>> {
        self.old.as_ref().map(Image::read).transpose()
    }

    /// The old and new images read as `T`.
    pub fn images_as<T: DeserializeOwned + 'static>(&self) -> Result<(Option<T>, Option<T>)> {
        Ok((self.old_as()?, self.new_as()?))
    }
}

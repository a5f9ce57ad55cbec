//! The last check before a result leaves the simulation: every number in it is finite and
//! non-negative. It walks the result through serde (so a new field is covered without
//! being listed) and names the first offending field by its dotted path.

use serde::ser::{self, Serialize};
use std::fmt;

/// What a non-finite result field means, by the start of its path.
const WHY: &[(&str, &str)] = &[
    (
        "to_target.loss",
        "the loss law has no solution at this batch and token count (a batch far above the critical batch, \
         or too few tokens); train on more tokens or use a smaller training.global_batch_size",
    ),
    (
        "to_target",
        "the training target is out of reach at this batch and model size under the loss law \
         (see [target] in docs/scenario.md), or the failure rates leave no goodput",
    ),
    ("energy", "the energy inputs ([energy]) give no finite figure"),
];

/// Why the result field at `path` has no meaningful value, for the error message.
pub fn why(path: &str) -> &'static str {
    WHY.iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("the inputs are outside what the model can represent", |(_, why)| why)
}

/// The first number of `value` that is NaN, infinite or negative: (dotted path, value).
pub fn first_bad_number<T: Serialize>(value: &T) -> Option<(String, f64)> {
    let mut w = Walker {
        path: Vec::new(),
        found: None,
    };
    let _ = value.serialize(&mut w);
    w.found
}

struct Walker {
    path: Vec<String>,
    found: Option<(String, f64)>,
}

/// Stops the walk once something is found.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stop")
    }
}
impl std::error::Error for Stop {}
impl ser::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop
    }
}

type R = Result<(), Stop>;

impl Walker {
    fn number(&mut self, x: f64) -> R {
        if x.is_finite() && x >= 0.0 {
            return Ok(());
        }
        self.found = Some((self.path.join("."), x));
        Err(Stop)
    }
    fn nested<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> R {
        self.path.push(key);
        let r = v.serialize(&mut *self);
        self.path.pop();
        r
    }
}

macro_rules! ok_scalars {
    ($($f:ident: $t:ty),*) => {$(fn $f(self, _: $t) -> R { Ok(()) })*};
}
macro_rules! signed {
    ($($f:ident: $t:ty),*) => {$(fn $f(self, v: $t) -> R { self.number(v as f64) })*};
}

impl<'a> ser::Serializer for &'a mut Walker {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = &'a mut Walker;
    type SerializeStructVariant = &'a mut Walker;

    ok_scalars!(serialize_bool: bool, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8]);
    signed!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_f32: f32, serialize_f64: f64);
    fn serialize_none(self) -> R {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> R {
        self.nested(variant.to_string(), v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Stop> {
        Ok(Seq { w: self, i: 0 })
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, Stop> {
        Ok(Seq { w: self, i: 0 })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, Stop> {
        Ok(Seq { w: self, i: 0 })
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Seq<'a>, Stop> {
        Ok(Seq { w: self, i: 0 })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Map<'a>, Stop> {
        Ok(Map { w: self, key: None })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, Stop> {
        Ok(self)
    }
}

struct Seq<'a> {
    w: &'a mut Walker,
    i: usize,
}

impl Seq<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        let r = self.w.nested(self.i.to_string(), v);
        self.i += 1;
        r
    }
}

macro_rules! seq_impl {
    ($($tr:ident :: $f:ident),*) => {$(
        impl ser::$tr for Seq<'_> {
            type Ok = ();
            type Error = Stop;
            fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
                self.item(v)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    )*};
}
seq_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

struct Map<'a> {
    w: &'a mut Walker,
    key: Option<String>,
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> R {
        self.key = Some(
            serde_json::to_value(k)
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default(),
        );
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        let key = self.key.take().unwrap_or_default();
        self.w.nested(key, v)
    }
    fn end(self) -> R {
        Ok(())
    }
}

macro_rules! struct_impl {
    ($($tr:ident),*) => {$(
        impl ser::$tr for &mut Walker {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> R {
                self.nested(key.to_string(), v)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    )*};
}
struct_impl!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Inner {
        ok_s: f64,
        list: Vec<f64>,
    }
    #[derive(Serialize)]
    struct Outer {
        name: String,
        count: u32,
        inner: Inner,
        by_kind: BTreeMap<String, f64>,
        maybe: Option<f64>,
    }

    fn outer(list: Vec<f64>, kind: f64, maybe: Option<f64>) -> Outer {
        Outer {
            name: "x".into(),
            count: 3,
            inner: Inner { ok_s: 1.5, list },
            by_kind: [("tp".to_string(), kind)].into_iter().collect(),
            maybe,
        }
    }

    #[test]
    fn finds_nan_inf_and_negative_by_path() {
        assert_eq!(first_bad_number(&outer(vec![0.0, 2.0], 1.0, None)), None);
        let (path, v) = first_bad_number(&outer(vec![0.0, f64::NAN], 1.0, None)).unwrap();
        assert_eq!(path, "inner.list.1");
        assert!(v.is_nan());
        assert_eq!(
            first_bad_number(&outer(vec![], f64::INFINITY, None)),
            Some(("by_kind.tp".into(), f64::INFINITY))
        );
        assert_eq!(
            first_bad_number(&outer(vec![], 1.0, Some(-2.0))),
            Some(("maybe".into(), -2.0))
        );
    }
}

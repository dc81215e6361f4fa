//! Building a document's [`Value`] within the limits that only the parse can check: the
//! nesting of YAML block collections and the expansion of YAML aliases.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::limits::KIB;
use super::{Limit, LoadLimits};

/// What the parse of one document may still spend: the limits a [`Node`] checks as it is built.
///
/// The budget of nodes and string bytes is twice the document's length (and 1 KiB), which no
/// document reaches by itself (a node takes at least one byte of text and a string at least
/// its own length), so only YAML aliases, which repeat a node as often as they are named, can
/// run it out. This is what bounds a "billion laughs", and also a few thousand aliases of one
/// long list, which the parser's own limit on alias jumps lets through and which would
/// otherwise take time and memory quadratic in the document's size.
pub(super) struct ParseState {
    max_depth: usize,
    budget: Cell<usize>,
    pub(super) exceeded: Cell<Option<Limit>>,
}

impl ParseState {
    pub(super) fn new(limits: &LoadLimits, document: &str) -> Self {
        ParseState {
            max_depth: limits.max_depth,
            budget: Cell::new(document.len().saturating_mul(2).saturating_add(KIB)),
            exceeded: Cell::new(None),
        }
    }

    pub(super) fn top(&self) -> Node<'_> {
        Node {
            depth: 1,
            state: self,
        }
    }
}

/// One value of a document, at its depth, built as a [`Value`] within the [`ParseState`].
#[derive(Clone, Copy)]
pub(super) struct Node<'s> {
    depth: usize,
    state: &'s ParseState,
}

impl Node<'_> {
    /// Takes `cost` from the budget.
    fn spend<E: serde::de::Error>(&self, cost: usize) -> Result<(), E> {
        let left = self.state.budget.get();
        if cost > left {
            self.state.exceeded.set(Some(Limit::AliasExpansion));
            return Err(E::custom(
                "YAML aliases expand the document past twice its size (alias expansion limit, \
                 against \"billion laughs\"); not read",
            ));
        }
        self.state.budget.set(left - cost);
        Ok(())
    }

    /// A child of this collection, one level deeper, after checking that it may be one.
    fn enter<E: serde::de::Error>(&self) -> Result<Node<'_>, E> {
        if self.depth > self.state.max_depth {
            self.state.exceeded.set(Some(Limit::Depth));
            return Err(E::custom(format_args!(
                "nesting deeper than {} levels ({}); not read",
                self.state.max_depth,
                Limit::Depth
            )));
        }
        self.spend(1)?;
        Ok(Node {
            depth: self.depth + 1,
            state: self.state,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        self.spend(value.len().saturating_add(1))?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Value, E> {
        self.spend(value.len().saturating_add(1))?;
        Ok(Value::String(value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            child.spend::<A::Error>(key.len())?;
            let value = map.next_value_seed(child)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use crate::load::fixtures::*;
    use crate::load::{Limit, Manifests};

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_alias_bomb_is_an_error_not_a_hang() {
        let mut text =
            String::from("kind: Ingress\nmetadata: {name: a}\na0: &a0 [x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text +=
                &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        let m = Manifests::from_yaml(&format!("{text}---\n{GOOD_YAML}"));
        assert_eq!(m.ingresses.len(), 1);
        assert_eq!(m.ingresses[0].metadata.name, "good");
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert_eq!(m.errors[0].limit, Some(Limit::AliasExpansion));
        assert!(
            m.errors[0].message.contains("billion laughs"),
            "{}",
            m.errors[0]
        );
    }

    /// Few alias jumps, each repeating a long list: within the parser's own limit on jumps,
    /// quadratic in the document's size without the expansion budget.
    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_aliases_of_a_long_list_are_bounded() {
        let n = 20_000;
        let text = format!(
            "kind: Ingress\nmetadata: {{name: a}}\nx: &x [{}]\ny: [{}]\n",
            "x, ".repeat(n),
            "*x, ".repeat(n)
        );
        let m = Manifests::from_yaml(&text);
        assert_eq!(
            m.errors[0].limit,
            Some(Limit::AliasExpansion),
            "{}",
            m.errors[0]
        );
        // A few aliases of a small node are fine.
        let m = Manifests::from_yaml(
            "kind: Ingress\nmetadata: {name: a}\nspec:\n  defaultBackend: &b {service: {name: web, port: {number: 80}}}\n  rules:\n  - http:\n      paths:\n      - {path: /a, pathType: Prefix, backend: *b}\n      - {path: /b, pathType: Prefix, backend: *b}\n",
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.ingresses.len(), 1);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
        let json = Manifests::from_json(&format!(
            "{{\"kind\":\"Ingress\",\"x\":{nested}}}\n{GOOD_JSON}"
        ));
        assert_eq!(json.errors.len(), 1, "{:?}", json.errors);
        assert_eq!(json.errors[0].limit, Some(Limit::Depth));
        assert_eq!(
            json.errors[0].to_string(),
            "document 0: nesting deeper than 64 levels (LoadLimits::max_depth); not read"
        );
        assert_eq!(json.ingresses.len(), 1, "the next document is still read");
        #[cfg(feature = "yaml")]
        {
            let yaml = Manifests::from_yaml(&format!("kind: Ingress\nx: {nested}\n"));
            assert_eq!(
                yaml.errors[0].limit,
                Some(Limit::Depth),
                "{}",
                yaml.errors[0]
            );
            // Without the pre-check this takes minutes: the scanner is quadratic in depth.
            let deep = format!("kind: Ingress\nx: {}\n", "{a: ".repeat(200_000));
            let yaml = Manifests::from_yaml(&deep);
            assert_eq!(
                yaml.errors[0].limit,
                Some(Limit::Depth),
                "{}",
                yaml.errors[0]
            );
            // Block collections nest without brackets.
            let block = format!("kind: Ingress\nx:\n{}y\n", "- ".repeat(10_000));
            let yaml = Manifests::from_yaml(&block);
            assert_eq!(
                yaml.errors[0].limit,
                Some(Limit::Depth),
                "{}",
                yaml.errors[0]
            );
            assert!(yaml.errors[0].message.contains("nesting deeper than 64"));
        }
    }
}

//! The `services.<name>.image` values of a Compose file, read from a YAML tree that resolves
//! anchors, aliases and merge keys, keeping the line of each value for notes.

use std::collections::HashMap;
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::Mention;
use super::interpolate::{Dialect, Vars, expand};

/// How many mapping look-ups one `image` look-up may take through YAML merge keys, so that a
/// file of nested merges cannot keep the walk busy.
const MERGE_BUDGET: usize = 10_000;

/// A YAML node, with the line of each scalar. Aliases share the node of their anchor.
#[derive(Debug)]
enum Node {
    /// A scalar; `plain` when unquoted (so `null` and `~` mean nothing).
    Scalar {
        /// The text.
        value: String,
        /// Unquoted.
        plain: bool,
        /// The 1-based line.
        line: usize,
    },
    /// A sequence.
    Seq(Vec<Rc<Node>>),
    /// A mapping, in file order.
    Map(Vec<(Rc<Node>, Rc<Node>)>),
}

impl Node {
    /// The scalar's text, if this is a scalar that is not null.
    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar {
                plain: true, value, ..
            } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL") => None,
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether this is the merge key `<<`.
    fn is_merge_key(&self) -> bool {
        matches!(self, Node::Scalar { value, plain: true, .. } if value == "<<")
    }

    /// Whether this is null (an empty or `null` plain scalar).
    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { plain: true, .. }) && self.text().is_none()
    }

    /// The first line in the node.
    fn line(&self) -> Option<usize> {
        match self {
            Node::Scalar { line, .. } => Some(*line),
            Node::Seq(items) => items.iter().find_map(|n| n.line()),
            Node::Map(entries) => entries.iter().find_map(|(k, _)| k.line()),
        }
    }
}

/// Builds [`Node`]s from the parser's events.
#[derive(Default)]
struct TreeBuilder {
    /// Open sequences and mappings, with their anchor ids; a mapping holds a key awaiting
    /// its value.
    open: Vec<(Open, usize)>,
    /// Finished nodes by anchor id.
    anchors: HashMap<usize, Rc<Node>>,
    /// The documents of the stream.
    documents: Vec<Rc<Node>>,
}

/// A sequence or mapping being built.
enum Open {
    /// A sequence's items so far.
    Seq(Vec<Rc<Node>>),
    /// A mapping's entries so far, and a key awaiting its value.
    Map(Vec<(Rc<Node>, Rc<Node>)>, Option<Rc<Node>>),
}

impl TreeBuilder {
    /// Adds a finished node, recording it under its anchor.
    fn finish(&mut self, node: Node, anchor: usize) {
        let node = Rc::new(node);
        if anchor > 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        self.add(node);
    }

    /// Adds a node to the open sequence or mapping, or as a document.
    fn add(&mut self, node: Rc<Node>) {
        match self.open.last_mut() {
            None => self.documents.push(node),
            Some((Open::Seq(items), _)) => items.push(node),
            Some((Open::Map(entries, key), _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, style, anchor, _) => self.finish(
                Node::Scalar {
                    value,
                    plain: style == TScalarStyle::Plain,
                    line: mark.line(),
                },
                anchor,
            ),
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().unwrap_or_else(|| {
                    Rc::new(Node::Scalar {
                        value: String::new(),
                        plain: true,
                        line: mark.line(),
                    })
                });
                self.add(node);
            }
            Event::SequenceStart(anchor, _) => self.open.push((Open::Seq(Vec::new()), anchor)),
            Event::MappingStart(anchor, _) => {
                self.open.push((Open::Map(Vec::new(), None), anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((open, anchor)) = self.open.pop() {
                    let node = match open {
                        Open::Seq(items) => Node::Seq(items),
                        Open::Map(entries, _) => Node::Map(entries),
                    };
                    self.finish(node, anchor);
                }
            }
            _ => {}
        }
    }
}

/// The value of `key` in a mapping, looking through merge keys (`<<: *base`,
/// `<<: [*a, *b]`) when the mapping does not have it itself.
fn get<'a>(map: &'a Node, key: &str, budget: &mut usize) -> Option<&'a Rc<Node>> {
    let Node::Map(entries) = map else {
        return None;
    };
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    let own = entries
        .iter()
        .find(|(k, _)| !k.is_merge_key() && k.text() == Some(key));
    if let Some((_, value)) = own {
        return Some(value);
    }
    for (_, merged) in entries.iter().filter(|(k, _)| k.is_merge_key()) {
        let sources: &[Rc<Node>] = match &**merged {
            Node::Seq(items) => items,
            _ => std::slice::from_ref(merged),
        };
        for source in sources {
            if let Some(value) = get(source, key, budget) {
                return Some(value);
            }
        }
    }
    None
}

/// The keys of a mapping, its own first, then those it merges in.
fn keys<'a>(map: &'a Node, out: &mut Vec<&'a Rc<Node>>, budget: &mut usize) {
    let Node::Map(entries) = map else {
        return;
    };
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    for (k, _) in entries {
        if !k.is_merge_key() && !out.iter().any(|o| o.text() == k.text()) {
            out.push(k);
        }
    }
    for (_, merged) in entries.iter().filter(|(k, _)| k.is_merge_key()) {
        match &**merged {
            Node::Seq(items) => items.iter().for_each(|i| keys(i, out, budget)),
            node => keys(node, out, budget),
        }
    }
}

/// Problems found in a file that parsed: (line, what is wrong).
type Problems = Vec<(usize, String)>;

/// The `services.<name>.image` values of a Compose file, with the problems found on the way;
/// a YAML error fails the whole file.
pub(super) fn mentions(text: &str) -> Result<(Vec<Mention>, Problems), yaml_rust2::ScanError> {
    let mut builder = TreeBuilder::default();
    Parser::new_from_str(text).load(&mut builder, true)?;
    let mut mentions = Vec::new();
    let mut problems = Vec::new();
    for document in &builder.documents {
        let mut budget = MERGE_BUDGET;
        let Some(services) = get(document, "services", &mut budget) else {
            continue;
        };
        if services.is_null() {
            continue;
        }
        if !matches!(**services, Node::Map(_)) {
            problems.push((
                services.line().unwrap_or(1),
                "services is not a mapping of service names".to_string(),
            ));
            continue;
        }
        let mut names = Vec::new();
        keys(services, &mut names, &mut budget);
        for name_node in names {
            let Some(name) = name_node.text() else {
                continue;
            };
            let mut budget = MERGE_BUDGET;
            let Some(service) = get(services, name, &mut budget) else {
                continue;
            };
            let Some(image) = get(service, "image", &mut budget) else {
                continue;
            };
            let place = format!("service {name:?}");
            match (&**image, image.text()) {
                (Node::Scalar { line, .. }, Some(written)) => mentions.push(Mention {
                    line: *line,
                    resolved: expand(written, &Vars::new(), Dialect::Compose),
                    written: written.to_string(),
                    place,
                }),
                (Node::Scalar { .. }, None) => {}
                (node, _) => problems.push((
                    node.line().or(name_node.line()).unwrap_or(1),
                    format!("{place}: image is not a string"),
                )),
            }
        }
    }
    Ok((mentions, problems))
}

#[cfg(test)]
mod tests {
    use super::super::discover;
    use super::super::fixture::*;
    use super::*;

    #[test]
    fn compose_with_anchors_merge_keys_and_defaults() {
        let compose = text(&[
            "x-base: &base",                                      // 1
            "  image: ${REGISTRY:-ghcr.io/acme}/base:${TAG-1.0}", // 2
            "  restart: always",                                  // 3
            "x-db: &db",                                          // 4
            "  image: postgres:16",                               // 5
            "services:",                                          // 6
            "  app:",                                             // 7
            "    <<: *base",                                      // 8
            "    ports: [\"80:80\"]",                             // 9
            "  worker:",                                          // 10
            "    <<: [*db, *base]",                               // 11
            "  own:",                                             // 12
            "    <<: *base",                                      // 13
            "    image: 'redis:7'",                               // 14
            "  builder:",                                         // 15
            "    build: .",                                       // 16
            "  nothing:",                                         // 17
            "  price:",                                           // 18
            "    image: ghcr.io/acme/a$$b",                       // 19
        ]);
        let dir = workspace(&[("compose.yaml", &compose)]);
        let d = discover(dir.path());
        assert_eq!(
            found(&dir, &d),
            vec![
                at("docker.io/library/postgres:16", "compose.yaml", 5),
                at("docker.io/library/redis:7", "compose.yaml", 14),
                at("ghcr.io/acme/base:1.0", "compose.yaml", 2),
            ]
        );
        // `a$$b` is `a$b`, which is not a valid repository: noted with its line.
        assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
        let expected = "compose.yaml:19: service \"price\": image \"ghcr.io/acme/a$b\": \
                        the repository part \"a$b\" must be";
        assert!(d.notes[0].starts_with(expected), "{}", d.notes[0]);
    }

    #[test]
    fn overrides_and_unresolved_variables() {
        let base = text(&["services:", "  web:", "    image: nginx:1.27"]);
        let overrides = text(&[
            "services:",
            "  web:",
            "    image: ${WEB_IMAGE}",
            "  cache:",
            "    image: \"${CACHE:-valkey/valkey}:8\"",
        ]);
        let prod = text(&["services:", "  web:", "    image: ghcr.io/acme/web:prod"]);
        let dir = workspace(&[
            ("docker-compose.yml", &base),
            ("docker-compose.override.yml", &overrides),
            ("compose.prod.yaml", &prod),
            ("compose.yaml.bak", "services:\n  x:\n    image: never\n"),
            ("other.yaml", "services:\n  x:\n    image: never\n"),
        ]);
        let d = discover(dir.path());
        assert_eq!(
            names(&d),
            vec![
                "docker.io/library/nginx:1.27",
                "docker.io/valkey/valkey:8",
                "ghcr.io/acme/web:prod",
            ]
        );
        assert_eq!(
            d.notes,
            vec![
                "docker-compose.override.yml:3: service \"web\": image \"${WEB_IMAGE}\" skipped: \
                 ${WEB_IMAGE} has no default in the file, and berth does not read the environment"
            ]
        );
    }

    #[test]
    fn malformed_yaml_is_noted_with_file_and_line() {
        let bad_indent = text(&[
            "services:",
            "  app:",
            "    image: ubuntu",
            "   bad: [unclosed",
        ]);
        let unknown_alias = text(&["services:", "  app:", "    image: *nope"]);
        let dir = workspace(&[
            ("sub/compose.yml", &bad_indent),
            ("compose.yaml", &unknown_alias),
        ]);
        let d = discover(dir.path());
        assert!(d.images.is_empty());
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert!(
            d.notes[0].starts_with("compose.yaml:3: not valid YAML ("),
            "{}",
            d.notes[0]
        );
        let sub = at("", "sub/compose.yml", 0).1;
        let expected = format!("{sub}:4: not valid YAML (");
        assert!(d.notes[1].starts_with(&expected), "{}", d.notes[1]);
        assert!(
            d.notes[1].ends_with("); its images were skipped"),
            "{}",
            d.notes[1]
        );
    }

    #[test]
    fn invalid_image_names_and_odd_services_are_noted() {
        let compose = text(&[
            "services:",
            "  a:",
            "    image: Ghcr.io/Acme/App",
            "  b:",
            "    image: [x]",
            "  c:",
            "    image: null",
        ]);
        let dir = workspace(&[("compose.yaml", &compose)]);
        let d = discover(dir.path());
        assert!(d.images.is_empty());
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert_eq!(
            d.notes[0],
            "compose.yaml:5: service \"b\": image is not a string; skipped"
        );
        let expected = "compose.yaml:3: service \"a\": image \"Ghcr.io/Acme/App\": \
                        the repository must be lower-case";
        assert!(d.notes[1].starts_with(expected), "{}", d.notes[1]);

        let dir = workspace(&[("compose.yaml", "services: [a, b]\n")]);
        let d = discover(dir.path());
        assert_eq!(
            d.notes,
            vec!["compose.yaml:1: services is not a mapping of service names; skipped"]
        );
    }

    #[test]
    fn merge_chains_cannot_run_away() {
        // Each level merges the one before twice: 2^40 look-ups without a budget.
        let mut yaml = String::from("x0: &a0 {k: v}\n");
        for i in 1..40 {
            yaml.push_str(&format!("x{i}: &a{i} {{<<: [*a{p}, *a{p}]}}\n", p = i - 1));
        }
        yaml.push_str("services:\n  s:\n    <<: *a39\n");
        let (mentions, problems) = mentions(&yaml).unwrap();
        assert!(mentions.is_empty() && problems.is_empty());
    }
}

//! The `services.<name>.image` values of a Compose file, with the line of each.
//!
//! The YAML is loaded by [`saphyr`] into its [`MarkedYaml`] tree, which keeps each node's
//! position and resolves aliases by copying their anchor, within [`ALIAS_BUDGET`] nodes and,
//! counting what saphyr's budget leaves out (text, keys, the anchors' own copies), within
//! [`COPY_BUDGET`] bytes; collections nest at most [`MAX_NESTING`] deep. A file past a bound
//! (a "billion laughs" file, nested aliases that would copy without end) fails to load and
//! is noted like any invalid YAML. Scalars are kept as written (`early_parse` off), so an image
//! or a service name is the text of the file, and only unquoted `null` or `~` mean nothing.
//! No YAML crate applies merge keys (`<<: *base`) to a tree that keeps positions:
//! `yaml-merge-keys` works on saphyr's position-less [`saphyr::Yaml`] only, so the few lines
//! of [`merged`] are hand-written here. They run in time linear in the loaded tree, since
//! every alias is already a copy.

use std::collections::{HashMap, HashSet};

use saphyr::{MarkedYaml, ScalarStyle, ScanError, YamlData, YamlLoader};
use saphyr_parser::Parser;

use super::interpolate::{Dialect, Vars, expand};
use super::{Mention, Problems, quoted};

/// How many nodes the aliases of one file may copy, altogether (saphyr's own budget).
const ALIAS_BUDGET: usize = 100_000;

/// The node of saphyr's tree that keeps positions.
type Node<'a> = MarkedYaml<'a>;

/// The text of a scalar, unless it is null (an unquoted `null`, `~` or nothing).
fn scalar<'a>(node: &'a Node<'_>) -> Option<&'a str> {
    match &node.data {
        YamlData::Representation(value, ScalarStyle::Plain, _)
            if matches!(&**value, "" | "~" | "null" | "Null" | "NULL") =>
        {
            None
        }
        YamlData::Representation(value, _, _) => Some(value),
        _ => None,
    }
}

/// Whether this is null: an unquoted `null`, `~`, or nothing.
fn is_null(node: &Node<'_>) -> bool {
    matches!(
        node.data,
        YamlData::Representation(_, ScalarStyle::Plain, _)
    ) && scalar(node).is_none()
}

/// Whether this is the merge key, an unquoted `<<`.
fn is_merge_key(node: &Node<'_>) -> bool {
    matches!(&node.data, YamlData::Representation(k, ScalarStyle::Plain, _) if k == "<<")
}

/// The node under its tag, if it has one (`!reset`, `!override` and others are ignored).
fn untagged<'a, 'b>(node: &'a Node<'b>) -> &'a Node<'b> {
    match &node.data {
        YamlData::Tagged(_, inner) => untagged(inner),
        _ => node,
    }
}

/// The 1-based line where a node starts.
fn line(node: &Node<'_>) -> usize {
    node.span.start.line()
}

/// The entries of a mapping with string keys as YAML merge keys make them: its own first, then
/// those of the mappings it merges (`<<: *base`, `<<: [*a, *b]`, earlier ones first) under the
/// keys it does not have itself. Empty for what is not a mapping.
fn merged<'a, 'b>(map: &'a Node<'b>) -> Vec<(&'a str, &'a Node<'b>)> {
    /// Adds the entries of `map` whose keys are not in `seen` yet.
    fn add<'a, 'b>(
        map: &'a Node<'b>,
        seen: &mut HashSet<&'a str>,
        out: &mut Vec<(&'a str, &'a Node<'b>)>,
    ) {
        let YamlData::Mapping(entries) = &untagged(map).data else {
            return;
        };
        for (key, value) in entries.iter().filter(|(k, _)| !is_merge_key(k)) {
            if let Some(key) = scalar(key)
                && seen.insert(key)
            {
                out.push((key, value));
            }
        }
        for (_, sources) in entries.iter().filter(|(k, _)| is_merge_key(k)) {
            match &untagged(sources).data {
                YamlData::Sequence(items) => items.iter().for_each(|i| add(i, seen, out)),
                _ => add(sources, seen, out),
            }
        }
    }
    let mut out = Vec::new();
    add(map, &mut HashSet::new(), &mut out);
    out
}

/// The value of `key` in a mapping, through its merge keys.
fn get<'a, 'b>(map: &'a Node<'b>, key: &str) -> Option<&'a Node<'b>> {
    merged(map)
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// How deep collections may nest. saphyr's scanner bounds flow collections (`[[[...`) but
/// not block ones (`- - - ...`), and a tree that deep would overflow the stack when it is
/// built, walked or dropped; a Compose file needs fewer than ten levels.
const MAX_NESTING: usize = 128;

/// How much the anchors and aliases of one file may copy, altogether: each node counts as
/// its size in memory ([`NODE_COST`]), each scalar its text besides. saphyr copies an
/// anchor's tree when the anchor is defined and again for every alias to it; its own
/// budget ([`ALIAS_BUDGET`]) counts only the nodes aliases copy, not their text, not what
/// keys hold and not the anchors' own copies, so a long scalar aliased a hundred thousand
/// times, anchors nested in anchors, or aliases in keys would copy gigabytes out of a
/// 1 MiB file. The anchors of a large real Compose file (`x-` blocks of a few dozen nodes,
/// each merged into a few dozen services) copy a few hundred KiB: 32 MiB is a hundred
/// times that, and a bound the daemon can afford for any file.
const COPY_BUDGET: usize = 32 * 1024 * 1024;

/// What one node of the tree costs in memory, before its text.
const NODE_COST: usize = std::mem::size_of::<Node<'static>>();

/// A collection being read: its cost so far, its anchor (0 for none) and where it starts.
type Open = (usize, usize, saphyr_parser::Marker);

/// Passes events on to the loader while they stay within bounds (collections nested at
/// most [`MAX_NESTING`] deep, anchors and aliases copying at most [`COPY_BUDGET`]), and
/// remembers where and why they stopped.
struct Bounds<'l, 'input> {
    /// The loader the events go to.
    loader: &'l mut YamlLoader<'input, Node<'input>>,
    /// The collections open, innermost last.
    open: Vec<Open>,
    /// The cost of each anchor's tree, by the parser's anchor id.
    anchors: HashMap<usize, usize>,
    /// What anchors and aliases have copied so far.
    copied: usize,
    /// Where and why the events stopped.
    stopped: Option<(saphyr_parser::Marker, String)>,
}

impl<'input> saphyr_parser::SpannedEventReceiver<'input> for Bounds<'_, 'input> {
    fn on_event(&mut self, ev: saphyr_parser::Event<'input>, span: saphyr_parser::Span) {
        use saphyr_parser::Event;
        if self.stopped.is_some() {
            return;
        }
        // The node this event completes: its cost, its anchor, and what copying it costs.
        let done = match &ev {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() == MAX_NESTING {
                    let why = format!("collections nest deeper than {MAX_NESTING} levels");
                    self.stopped = Some((span.start, why));
                    return;
                }
                self.open.push((NODE_COST, *anchor, span.start));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => self
                .open
                .pop()
                .map(|(cost, anchor, start)| (cost, anchor, start, 0)),
            Event::Scalar(text, _, anchor, _) => {
                Some((NODE_COST + text.len(), *anchor, span.start, 0))
            }
            Event::Alias(id) => {
                let cost = self.anchors.get(id).copied().unwrap_or(NODE_COST);
                Some((cost, 0, span.start, cost))
            }
            _ => None,
        };
        if let Some((cost, anchor, start, alias_copy)) = done {
            let anchor_copy = if anchor > 0 { cost } else { 0 };
            let copied = self
                .copied
                .saturating_add(anchor_copy)
                .saturating_add(alias_copy);
            if copied > COPY_BUDGET {
                let why = format!(
                    "anchors and aliases would copy more than {} MiB (possible \
                     billion-laughs attack)",
                    COPY_BUDGET >> 20
                );
                self.stopped = Some((start, why));
                return;
            }
            self.copied = copied;
            if anchor > 0 {
                self.anchors.insert(anchor, cost);
            }
            if let Some((parent, _, _)) = self.open.last_mut() {
                *parent = parent.saturating_add(cost);
            }
        }
        self.loader.on_event(ev, span);
    }
}

/// The documents of a YAML stream, with positions and scalars as written.
fn load(text: &str) -> Result<Vec<Node<'_>>, ScanError> {
    let mut loader = YamlLoader::<Node<'_>>::default();
    loader.early_parse(false);
    loader.alias_limit(ALIAS_BUDGET);
    let mut bounds = Bounds {
        loader: &mut loader,
        open: Vec::new(),
        anchors: HashMap::new(),
        copied: 0,
        stopped: None,
    };
    // The events are driven here, one by one: the parser's own `load` recurses once per
    // level, and would overflow the stack before any bound could stop it.
    for event in Parser::new_from_str(text) {
        let (event, span) = event?;
        saphyr_parser::SpannedEventReceiver::on_event(&mut bounds, event, span);
        if bounds.stopped.is_some() || bounds.loader.error().is_some() {
            break;
        }
    }
    if let Some((at, why)) = bounds.stopped {
        return Err(ScanError::new(at, why));
    }
    if let Some(e) = loader.error() {
        return Err(e.clone());
    }
    Ok(loader.into_documents())
}

/// The `services.<name>.image` values of a Compose file, with the problems found on the way;
/// a YAML error fails the whole file.
pub(super) fn mentions(text: &str) -> Result<(Vec<Mention>, Problems), ScanError> {
    let mut mentions = Vec::new();
    let mut problems = Vec::new();
    for document in &load(text)? {
        let Some(services) = get(document, "services") else {
            continue;
        };
        if is_null(services) {
            continue;
        }
        if !untagged(services).data.is_mapping() {
            problems.push((
                line(services),
                "services is not a mapping of service names".to_string(),
            ));
            continue;
        }
        for (name, service) in merged(services) {
            let Some(image) = get(service, "image") else {
                continue;
            };
            let place = format!("service {:?}", quoted(name));
            match (&image.data, scalar(image)) {
                (YamlData::Representation(..), Some(written)) => mentions.push(Mention {
                    line: line(image),
                    resolved: expand(written, &Vars::new(), Dialect::Compose),
                    written: written.to_string(),
                    place,
                }),
                (YamlData::Representation(..), None) => {}
                _ => problems.push((line(image), format!("{place}: image is not a string"))),
            }
        }
    }
    Ok((mentions, problems))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{Kind, discover, images_in};
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
        // Each level merges the one before twice: 2^40 nodes if every alias were copied.
        let mut yaml = String::from("x0: &a0 {k: v}\n");
        for i in 1..40 {
            yaml.push_str(&format!("x{i}: &a{i} {{<<: [*a{p}, *a{p}]}}\n", p = i - 1));
        }
        yaml.push_str("services:\n  s:\n    <<: *a39\n");
        let (images, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        assert!(images.is_empty());
        // The copies made so far pass the budget (100,000 nodes) on line 15.
        assert_eq!(
            notes,
            vec![
                "compose.yaml:15: not valid YAML (alias expansion exceeded the maximum node \
                 budget (possible billion-laughs attack)); its images were skipped"
            ]
        );
    }

    #[test]
    fn collections_nested_too_deep_are_noted_not_loaded() {
        // Block sequences, which the parser does not bound itself, 100,000 deep: without a
        // bound, building or dropping the tree overflows the stack.
        let nested = |n: usize| format!("x:\n{}a\nservices:\n  a:\n    image: x\n", "- ".repeat(n));
        let text = nested(100_000);
        let (found, notes) = images_in(Kind::Compose, &text, "compose.yaml");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(
            notes,
            [format!(
                "compose.yaml:2: not valid YAML (collections nest deeper than {MAX_NESTING} levels); its images were skipped"
            )]
        );
        let (found, notes) = images_in(Kind::Compose, &nested(MAX_NESTING - 2), "compose.yaml");
        assert!(notes.is_empty() && found.len() == 1, "{found:?} {notes:?}");
    }

    #[test]
    fn billion_laughs_is_noted_not_expanded() {
        // The classic: nine levels of nine aliases each, 9^9 strings once expanded.
        let mut yaml = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..9 {
            let refs = vec![format!("*l{}", i - 1); 9].join(", ");
            yaml.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        yaml.push_str("services:\n  s:\n    image: *l8\n");
        let (images, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("not valid YAML (alias expansion exceeded"),
            "{}",
            notes[0]
        );
    }

    /// The merge key's own example (yaml.org/type/merge.html): the four mappings after the
    /// anchors are equal, by explicit keys, one merged map, several, and overrides.
    #[test]
    fn yaml_org_merge_example() {
        let yaml = text(&[
            "- &CENTER { x: 1, y: 2 }",
            "- &LEFT { x: 0, y: 2 }",
            "- &BIG { r: 10 }",
            "- &SMALL { r: 1 }",
            "- x: 1",
            "  y: 2",
            "  r: 10",
            "  label: center/big",
            "- << : *CENTER",
            "  r: 10",
            "  label: center/big",
            "- << : [ *CENTER, *BIG ]",
            "  label: center/big",
            "- << : [ *BIG, *LEFT, *SMALL ]",
            "  x: 1",
            "  label: center/big",
            "- << : { x: 1, y: 2, r: 10 }",
            "  label: center/big",
        ]);
        let documents = load(&yaml).unwrap();
        let YamlData::Sequence(maps) = &documents[0].data else {
            panic!("not a sequence");
        };
        for (i, map) in maps[4..].iter().enumerate() {
            let mut entries: Vec<(&str, &str)> = merged(map)
                .into_iter()
                .map(|(k, v)| (k, scalar(v).unwrap()))
                .collect();
            entries.sort();
            let expected = [("label", "center/big"), ("r", "10"), ("x", "1"), ("y", "2")];
            assert_eq!(entries, expected, "map {}", i + 4);
        }
    }

    #[test]
    fn compose_anchors_aliases_and_tags() {
        let compose = text(&[
            "x-img: &img ghcr.io/acme/aliased:1",     // 1
            "services:",                              // 2
            "  alias:",                               // 3
            "    image: *img",                        // 4: an alias is found on its own line
            "  inline:",                              // 5
            "    <<: {image: ghcr.io/acme/inline:1}", // 6
            "  \"quoted\":",                          // 7
            "    \"image\": 'ghcr.io/acme/quoted:1'", // 8
            "  reset:",                               // 9
            "    <<: {image: never}",                 // 10
            "    image: !reset null",                 // 11
            "  tagged: !override",                    // 12
            "    image: ghcr.io/acme/tagged:1",       // 13
        ]);
        let (images, notes) = images_in(Kind::Compose, &compose, "compose.yaml");
        let images: Vec<(usize, String)> = images
            .into_iter()
            .map(|(line, image)| (line, image.canonical()))
            .collect();
        assert_eq!(
            images,
            vec![
                (4, "ghcr.io/acme/aliased:1".to_string()),
                (6, "ghcr.io/acme/inline:1".to_string()),
                (8, "ghcr.io/acme/quoted:1".to_string()),
                (13, "ghcr.io/acme/tagged:1".to_string()),
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn duplicated_keys_are_invalid_yaml() {
        let compose = text(&["services:", "  a:", "    image: x", "  a:", "    image: y"]);
        let (images, notes) = images_in(Kind::Compose, &compose, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(
            notes,
            vec![
                "compose.yaml:4: not valid YAML (duplicated key in mapping); its images were \
                 skipped"
            ]
        );
    }

    /// The note a file gets when its anchors and aliases pass [`COPY_BUDGET`].
    fn over_budget(line: usize) -> Vec<String> {
        vec![format!(
            "compose.yaml:{line}: not valid YAML (anchors and aliases would copy more than 32 \
             MiB (possible billion-laughs attack)); its images were skipped"
        )]
    }

    #[test]
    fn a_long_scalar_aliased_many_times_is_noted_not_copied() {
        // 10,000 aliases of a 50 KB scalar (one saphyr owns, as it has escapes): 500 MB of
        // copies, which saphyr's budget (in nodes: one each) lets through.
        let mut yaml = format!("x: &long \"{}\"\n", "ab\\n".repeat(12_500));
        yaml.push_str(&format!("y: [{}]\n", "*long, ".repeat(10_000)));
        yaml.push_str("services:\n  s:\n    image: x\n");
        let (images, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(notes, over_budget(2));
    }

    #[test]
    fn aliases_in_keys_are_counted() {
        // Each level's keys hold nine copies of the level before: saphyr's budget counts a
        // key as one node whatever it holds.
        let mut yaml = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..6 {
            let keys: Vec<String> = (0..9)
                .map(|k| format!("? [*l{}, {k}] : {k}", i - 1))
                .collect();
            yaml.push_str(&format!("l{i}: &l{i} {{{}}}\n", keys.join(", ")));
        }
        yaml.push_str("services:\n  s:\n    image: x\n");
        let (images, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(notes, over_budget(6));
    }

    #[test]
    fn anchors_nested_in_anchors_are_counted() {
        // saphyr copies each anchored collection's tree when it ends: a hundred anchors
        // around 20,000 scalars would be a hundred copies of them.
        let yaml = format!(
            "x: {}{}{}\nservices:\n  s:\n    image: x\n",
            (0..100).map(|i| format!("&a{i} [")).collect::<String>(),
            "a, ".repeat(20_000),
            "]".repeat(100),
        );
        let (images, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(notes, over_budget(1));
    }

    #[test]
    fn anchors_of_a_real_file_stay_well_within_the_budget() {
        // A shared block of 50 settings, merged into 200 services.
        let mut yaml = String::from("x-common: &common\n");
        for i in 0..50 {
            yaml.push_str(&format!("  SETTING_{i}: a-value-of-some-length-{i}\n"));
        }
        yaml.push_str("services:\n");
        for i in 0..200 {
            yaml.push_str(&format!(
                "  s{i}:\n    <<: *common\n    image: ghcr.io/acme/s{i}:1\n"
            ));
        }
        let (images, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        assert_eq!(images.len(), 200);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn long_service_names_are_quoted_short() {
        // A plain key may be up to 1,024 characters long.
        let name = "s".repeat(1_000);
        let yaml = format!("services:\n  {name}:\n    image: ${{X}}\n");
        let (_, notes) = images_in(Kind::Compose, &yaml, "compose.yaml");
        let expected = format!(
            "compose.yaml:3: service \"{}…\": image \"${{X}}\" skipped: ${{X}} has no default in \
             the file, and berth does not read the environment",
            "s".repeat(crate::discover::MAX_QUOTED)
        );
        assert_eq!(notes, vec![expected]);
    }
}

//! Dependencies between recommendations and the order to act in: which
//! resources are related (in either direction), with each relation's kind,
//! direction and evidence; a removal of something others depend on says so
//! and carries a higher risk; and batches of related recommendations,
//! dependents first.
//!
//! A relation `A -> B` of kind K means A depends on B (a volume
//! `attached_to` an instance, an instance `member_of` a group, a replica
//! `replica_of` its primary, a function `uses` a queue), except the kinds
//! stated from the provider's side ([`PROVIDER_SIDE_KINDS`]: a database's
//! security group that `admits` an instance's), where B depends on A.

use crate::domain::{
    Action, DependencyDetail, DependencyDirection, Recommendation, Relation, Resource,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The inventory's relations, indexed once per cycle, so that a
/// recommendation's dependencies cost the size of its own neighbourhood
/// rather than a scan of the estate (quadratic at 10,000 resources).
pub struct DependencyIndex<'a> {
    inventory: &'a [Resource],
    /// The first resource with each id, as a linear search would find it.
    first: HashMap<&'a str, &'a Resource>,
    /// For each id, the resources naming it as a relation target, with the relation.
    referrers: HashMap<&'a str, Vec<(&'a str, &'a Relation)>>,
}

/// Relation kinds where the target depends on the resource that states them.
pub const PROVIDER_SIDE_KINDS: &[&str] = &["admits"];

fn provider_side(kind: &str) -> bool {
    PROVIDER_SIDE_KINDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind))
}

/// The relation's evidence as discovery recorded it (an `evidence` field of
/// any shape), read through its serialised form so that this code does not
/// depend on that field's type.
fn evidence(rel: &Relation) -> Option<String> {
    let v = serde_json::to_value(rel).ok()?;
    match v.get("evidence")? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn is_removal(a: Action) -> bool {
    matches!(a, Action::Stop | Action::Terminate | Action::DeleteUnused)
}

impl<'a> DependencyIndex<'a> {
    pub fn new(inventory: &'a [Resource]) -> Self {
        let mut first = HashMap::with_capacity(inventory.len());
        let mut referrers: HashMap<&'a str, Vec<(&'a str, &'a Relation)>> = HashMap::new();
        for r in inventory {
            first.entry(r.id.as_str()).or_insert(r);
            for rel in &r.relations {
                referrers
                    .entry(rel.target_id.as_str())
                    .or_default()
                    .push((r.id.as_str(), rel));
            }
        }
        DependencyIndex {
            inventory,
            first,
            referrers,
        }
    }

    pub fn inventory(&self) -> &'a [Resource] {
        self.inventory
    }

    /// The first inventory entry with this id.
    pub fn resource(&self, id: &str) -> Option<&'a Resource> {
        self.first.get(id).copied()
    }

    /// Ids of the resources related to `resource` in either direction: those
    /// it names in its relations and those naming it in theirs. Sorted, no
    /// self.
    pub fn dependencies_for(&self, resource: &Resource) -> Vec<String> {
        let mut ids: BTreeSet<&str> = resource
            .relations
            .iter()
            .map(|r| r.target_id.as_str())
            .collect();
        if let Some(referrers) = self.referrers.get(resource.id.as_str()) {
            ids.extend(referrers.iter().map(|(id, _)| *id));
        }
        ids.remove(resource.id.as_str());
        ids.into_iter().map(str::to_string).collect()
    }

    /// The relations of `resource` in both directions, each with its kind,
    /// direction and evidence. Sorted, no self.
    pub fn details_for(&self, resource: &Resource) -> Vec<DependencyDetail> {
        let mut out: BTreeSet<DependencyDetail> = BTreeSet::new();
        for rel in &resource.relations {
            out.insert(DependencyDetail {
                resource_id: rel.target_id.clone(),
                kind: rel.kind.clone(),
                direction: if provider_side(&rel.kind) {
                    DependencyDirection::DependedOnBy
                } else {
                    DependencyDirection::DependsOn
                },
                evidence: evidence(rel),
            });
        }
        for (id, rel) in self
            .referrers
            .get(resource.id.as_str())
            .into_iter()
            .flatten()
        {
            out.insert(DependencyDetail {
                resource_id: id.to_string(),
                kind: rel.kind.clone(),
                direction: if provider_side(&rel.kind) {
                    DependencyDirection::DependsOn
                } else {
                    DependencyDirection::DependedOnBy
                },
                evidence: evidence(rel),
            });
        }
        out.retain(|d| d.resource_id != resource.id);
        out.into_iter().collect()
    }

    /// Adds to each recommendation the ids its resource is related to, after
    /// those it already lists, without repeats, and the relations behind
    /// them. A stop, terminate or delete of something others depend on says
    /// which in its reason and has its risk raised by one.
    pub fn link(&self, recs: &mut [Recommendation]) {
        for rec in recs {
            let Some(resource) = self.resource(&rec.resource_id) else {
                continue;
            };
            for d in self.dependencies_for(resource) {
                if d != rec.resource_id && !rec.dependencies.contains(&d) {
                    rec.dependencies.push(d);
                }
            }
            let details = self.details_for(resource);
            let dependents: Vec<String> = details
                .iter()
                .filter(|d| d.direction == DependencyDirection::DependedOnBy)
                .map(|d| match &d.evidence {
                    Some(e) => format!("{} ({}; {e})", d.resource_id, d.kind),
                    None => format!("{} ({})", d.resource_id, d.kind),
                })
                .collect();
            if is_removal(rec.action) && !dependents.is_empty() {
                rec.risk = (rec.risk + 1).min(4);
                rec.reason.push_str(&format!(
                    " Depended on by {}: {}; acting on it affects them, so the risk is raised to {}.",
                    dependents.len(),
                    dependents.join(", "),
                    rec.risk
                ));
            }
            rec.dependency_details = details;
        }
    }
}

/// The scan the index replaced, kept as the reference its properties are
/// checked against.
#[cfg(test)]
pub(crate) fn dependencies_for(resource: &Resource, inventory: &[Resource]) -> Vec<String> {
    let mut ids: BTreeSet<&str> = resource
        .relations
        .iter()
        .map(|r| r.target_id.as_str())
        .collect();
    for other in inventory {
        if other.id != resource.id && other.relations.iter().any(|r| r.target_id == resource.id) {
            ids.insert(other.id.as_str());
        }
    }
    ids.remove(resource.id.as_str());
    ids.into_iter().map(str::to_string).collect()
}

/// Groups recommendations into batches of related resources (connected
/// through relations, also via resources without a recommendation) and orders
/// each batch so that dependents come before what they depend on (a relation
/// `A -> B` means A depends on B: act on A, then B). Cycles fall back to id
/// order. Each recommendation's `dependencies` is completed with both
/// directions from the inventory. Batches come by total savings, largest
/// first, then by resource id; the order is deterministic.
pub fn order_actions(
    recs: Vec<Recommendation>,
    index: &DependencyIndex<'_>,
) -> Vec<Vec<Recommendation>> {
    order_actions_with(recs, index.inventory(), |r| index.dependencies_for(r))
}

pub(super) fn order_actions_with(
    recs: Vec<Recommendation>,
    inventory: &[Resource],
    dependencies_for: impl Fn(&Resource) -> Vec<String>,
) -> Vec<Vec<Recommendation>> {
    let rec_ids: Vec<String> = recs.iter().map(|r| r.resource_id.clone()).collect();
    // Directed edges "depends on", from the inventory.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut nodes: BTreeSet<&str> = BTreeSet::new();
    for r in inventory {
        nodes.insert(&r.id);
        for rel in &r.relations {
            if rel.target_id != r.id {
                edges.entry(&r.id).or_default().insert(&rel.target_id);
                nodes.insert(&rel.target_id);
            }
        }
    }
    for id in &rec_ids {
        nodes.insert(id);
    }
    // Components (undirected).
    let ids: Vec<&str> = nodes.iter().copied().collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for (a, bs) in &edges {
        for b in bs {
            if let (Some(&x), Some(&y)) = (index.get(a), index.get(b)) {
                let (rx, ry) = (root(&mut parent, x), root(&mut parent, y));
                if rx != ry {
                    parent[rx.max(ry)] = rx.min(ry);
                }
            }
        }
    }
    // Topological order over all nodes: dependents first (Kahn, by id).
    let mut indegree: BTreeMap<&str, usize> = ids.iter().map(|id| (*id, 0)).collect();
    for bs in edges.values() {
        for b in bs {
            if let Some(d) = indegree.get_mut(b) {
                *d += 1;
            }
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    while let Some(id) = ready.pop_first() {
        position.insert(id, position.len());
        if let Some(bs) = edges.get(id) {
            for b in bs {
                if let Some(d) = indegree.get_mut(b) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(b);
                    }
                }
            }
        }
    }
    for id in &ids {
        if !position.contains_key(id) {
            position.insert(id, position.len());
        }
    }
    let by_id: BTreeMap<&str, &Resource> = inventory.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut groups: BTreeMap<usize, Vec<(usize, Recommendation)>> = BTreeMap::new();
    let keyed: Vec<(usize, usize, Recommendation)> = recs
        .into_iter()
        .map(|mut rec| {
            if let Some(res) = by_id.get(rec.resource_id.as_str()) {
                let mut deps: BTreeSet<String> = rec.dependencies.drain(..).collect();
                deps.extend(dependencies_for(res));
                rec.dependencies = deps.into_iter().collect();
            }
            let i = index.get(rec.resource_id.as_str()).copied().unwrap_or(0);
            let comp = root(&mut parent, i);
            let pos = position
                .get(rec.resource_id.as_str())
                .copied()
                .unwrap_or(usize::MAX);
            (comp, pos, rec)
        })
        .collect();
    for (comp, pos, rec) in keyed {
        groups.entry(comp).or_default().push((pos, rec));
    }
    let mut batches: Vec<Vec<Recommendation>> = groups
        .into_values()
        .map(|mut g| {
            g.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
            g.into_iter().map(|(_, r)| r).collect()
        })
        .collect();
    sort_batches(&mut batches);
    batches
}

/// Batches by total savings, largest first, then by their first resource
/// (scope and id), so the order is deterministic across scopes too.
pub fn sort_batches(batches: &mut [Vec<Recommendation>]) {
    let total =
        |b: &Vec<Recommendation>| b.iter().filter_map(|r| r.monthly_savings_usd).sum::<f64>();
    let first = |b: &Vec<Recommendation>| b.iter().map(Recommendation::key).min();
    batches.sort_by(|a, b| {
        total(b)
            .total_cmp(&total(a))
            .then_with(|| first(a).cmp(&first(b)))
    });
}

//! The EKS field mapping: SigmaHQ's Kubernetes audit rules name three
//! fields the audit event does not have; they are renamed before a rule is
//! compiled, so those rules run unchanged. Every other field name is a
//! dotted path into the audit event as EKS writes it.

use rsigma_parser::{Detection, SigmaRule};

/// Field as a Sigma rule names it → where the EKS audit event has it.
pub const FIELD_MAP: [(&str, &str); 3] = [
    // SigmaHQ's name for the request's API group.
    ("apiGroup", "objectRef.apiGroup"),
    // A pod's hostPath volumes: any volume's path (so `hostPath: '*'`
    // means "mounts some host path").
    ("hostPath", "requestObject.spec.volumes.hostPath.path"),
    // Capabilities a pod's containers add (so `capabilities: '*'` means
    // "adds some capability").
    (
        "capabilities",
        "requestObject.spec.containers.securityContext.capabilities.add",
    ),
];

/// Where the audit event has `field`.
pub fn field(name: &str) -> &str {
    FIELD_MAP
        .iter()
        .find(|(from, _)| *from == name)
        .map_or(name, |(_, to)| to)
}

/// Renames the mapped fields of a rule's detections.
pub fn map_rule(rule: &mut SigmaRule) {
    for detection in rule.detection.named.values_mut() {
        map_detection(detection);
    }
}

fn map_detection(d: &mut Detection) {
    match d {
        Detection::AllOf(items) => {
            for item in items {
                if let Some(name) = &item.field.name {
                    let mapped = field(name);
                    if mapped != name {
                        item.field.name = Some(mapped.to_owned());
                    }
                }
            }
        }
        Detection::AnyOf(ds) | Detection::And(ds) => ds.iter_mut().for_each(map_detection),
        Detection::ArrayMatch { field: f, .. } => {
            let mapped = field(f);
            if mapped != f {
                *f = mapped.to_owned();
            }
        }
        Detection::Conditional { named, .. } => named.values_mut().for_each(map_detection),
        Detection::Keywords(_) => {}
    }
}

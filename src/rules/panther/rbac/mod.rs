//! Permissions and credentials: roles and bindings, admission webhooks, certificates and tokens, exposed services and ingresses.

use crate::config::DetectorConfig;
use crate::rules::catalog::Catalog;
use crate::rules::Rule;

pub mod admission_controller_created;
pub mod client_certificate_created;
pub mod clusterrolebinding_privileged;
mod common;
pub mod ingress_without_tls;
pub mod role_node_proxy;
pub mod role_pod_exec;
pub mod role_wildcard;
pub mod role_write_permissions;
pub mod service_nodeport;
pub mod serviceaccount_token_created;
pub mod system_role_modified;

/// The group's rules, one line each.
pub fn rules(_config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(Catalog::new(role_wildcard::RoleWildcard)),
        Box::new(Catalog::new(
            clusterrolebinding_privileged::ClusterRoleBindingPrivileged,
        )),
        Box::new(Catalog::new(role_node_proxy::RoleNodeProxy)),
        Box::new(Catalog::new(role_pod_exec::RolePodExec)),
        Box::new(Catalog::new(role_write_permissions::RoleWritePermissions)),
        Box::new(Catalog::new(system_role_modified::SystemRoleModified)),
        Box::new(Catalog::new(
            admission_controller_created::AdmissionControllerCreated,
        )),
        Box::new(Catalog::new(
            client_certificate_created::ClientCertificateCreated,
        )),
        Box::new(Catalog::new(
            serviceaccount_token_created::ServiceAccountTokenCreated,
        )),
        Box::new(Catalog::new(ingress_without_tls::IngressWithoutTls)),
        Box::new(Catalog::new(service_nodeport::ServiceNodePort)),
    ]
}

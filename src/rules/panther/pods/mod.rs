//! Workloads: pods with privileges, host namespaces, host paths or capabilities, pods in system namespaces, exec and copy into pods, DaemonSets and CronJobs.

use crate::config::DetectorConfig;
use crate::rules::catalog::Catalog;
use crate::rules::Rule;

pub(crate) mod common;
pub mod cronjob_created_or_modified;
pub mod daemonset_created;
pub mod dangerous_capabilities;
pub mod exec_into_pod;
pub mod host_ipc;
pub mod host_network;
pub mod host_pid;
pub mod hostpath_volume;
pub mod kubectl_cp;
pub mod privileged_pod;
pub mod steal_serviceaccount_token;
pub mod system_namespace;

/// The group's rules, one line each.
pub fn rules(config: &DetectorConfig) -> Vec<Box<dyn Rule>> {
    let _ = config;
    vec![
        Box::new(Catalog::new(privileged_pod::PrivilegedPod)),
        Box::new(Catalog::new(dangerous_capabilities::DangerousCapabilities)),
        Box::new(Catalog::new(host_ipc::HostIpc)),
        Box::new(Catalog::new(host_network::HostNetwork)),
        Box::new(Catalog::new(host_pid::HostPid)),
        Box::new(Catalog::new(hostpath_volume::HostPathVolume)),
        Box::new(Catalog::new(system_namespace::SystemNamespace)),
        Box::new(Catalog::new(
            steal_serviceaccount_token::StealServiceAccountToken,
        )),
        Box::new(Catalog::new(exec_into_pod::ExecIntoPod)),
        Box::new(Catalog::new(kubectl_cp::KubectlCp)),
        Box::new(Catalog::new(daemonset_created::DaemonSetCreated)),
        Box::new(Catalog::new(
            cronjob_created_or_modified::CronJobCreatedOrModified,
        )),
    ]
}

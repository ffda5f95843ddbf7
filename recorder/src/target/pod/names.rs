//! File names and paths made from a pod's names. The names come from the
//! cluster (attacker-controlled in a multi-tenant one), so each goes through
//! [`crate::k8s_name`] first: `../../etc/x` never becomes a path.

use std::path::PathBuf;

use crate::k8s_name::{Kind, NameError, validate};

/// One container of one pod, by the names Kubernetes gave them.
#[derive(Clone, Copy, Debug)]
pub struct ContainerNames<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
}

impl ContainerNames<'_> {
    /// Refuses any name Kubernetes itself would refuse.
    pub fn validate(&self) -> Result<(), NameError> {
        validate(Kind::Namespace, self.namespace)?;
        validate(Kind::Pod, self.pod)?;
        validate(Kind::Container, self.container)
    }

    /// `<namespace>_<pod>_<container>.json` (`_` cannot occur in the names).
    pub fn file_name(&self) -> Result<String, NameError> {
        self.validate()?;
        Ok(format!("{}_{}_{}.json", self.namespace, self.pod, self.container))
    }

    /// Where `--install` writes, relative to the kubelet's seccomp root:
    /// `recorder/<namespace>/<pod>/<container>.json`. This is also the
    /// `localhostProfile` the kubelet resolves.
    pub fn install_path(&self) -> Result<PathBuf, NameError> {
        self.validate()?;
        Ok(PathBuf::from("recorder").join(self.namespace).join(self.pod).join(format!("{}.json", self.container)))
    }

    /// The securityContext snippet to paste into the container spec.
    pub fn snippet(&self) -> Result<String, NameError> {
        let path = self.install_path()?;
        Ok(format!(
            "# container {} of pod {}/{}:\nsecurityContext:\n  seccompProfile:\n    type: Localhost\n    localhostProfile: {}\n",
            self.container,
            self.namespace,
            self.pod,
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn hostile_names_never_become_paths() {
        for bad in ["../../etc/x", "..", "a/b", "", "UPPER", "a..b", "-a", "a-", "x\0y", "a_b"] {
            let names = ContainerNames { namespace: "default", pod: bad, container: "c" };
            assert!(names.install_path().is_err(), "{bad:?}");
            assert!(names.file_name().is_err(), "{bad:?}");
            let names = ContainerNames { namespace: bad, pod: "p", container: "c" };
            assert!(names.file_name().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn valid_names_make_the_documented_paths() {
        let names = ContainerNames { namespace: "default", pod: "nginx", container: "web" };
        assert_eq!(names.install_path().expect("valid"), Path::new("recorder/default/nginx/web.json"));
        let names = ContainerNames { namespace: "kube-system", pod: "a.b", container: "c-1" };
        assert_eq!(names.file_name().expect("valid"), "kube-system_a.b_c-1.json");
        let names = ContainerNames { namespace: "default", pod: "nginx", container: "web" };
        assert!(names.snippet().expect("valid").contains("localhostProfile: recorder/default/nginx/web.json"));
    }
}

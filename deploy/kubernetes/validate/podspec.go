package validate

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// flagValue is the value of a long flag in args, written "--name value" or
// "--name=value"; the last one wins, as with pflag.
func flagValue(args []string, name string) (value string, ok bool) {
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == name && i+1 < len(args):
			value, ok = args[i+1], true
			i++
		case strings.HasPrefix(args[i], name+"="):
			value, ok = strings.TrimPrefix(args[i], name+"="), true
		}
	}
	return value, ok
}

// runsPop2imap tells whether c runs the image's entrypoint, pop2imap,
// with args that begin with sub.
func runsPop2imap(c *corev1.Container, sub ...string) bool {
	if len(c.Command) > 0 && path.Base(c.Command[0]) != "pop2imap" {
		return false
	}
	args := append(append([]string(nil), c.Command[min(len(c.Command), 1):]...), c.Args...)
	if len(args) < len(sub) {
		return false
	}
	for i, s := range sub {
		if args[i] != s {
			return false
		}
	}
	return true
}

// mountOf finds the mount of c that holds the absolute path p (the
// deepest, when mounts nest) and the pod's volume it mounts; rel is p
// relative to the mount. vol is nil when no volume has the mount's name.
func mountOf(spec *corev1.PodSpec, c *corev1.Container, p string) (m *corev1.VolumeMount, vol *corev1.Volume, rel string) {
	p = path.Clean(p)
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		mp := path.Clean(vm.MountPath)
		if p != mp && !strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if m == nil || len(mp) > len(path.Clean(m.MountPath)) {
			m = vm
		}
	}
	if m == nil {
		return nil, nil, ""
	}
	rel = strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(m.MountPath)), "/")
	return m, volumeNamed(spec, m.Name), rel
}

// volumeNamed is the pod's volume called name, or nil.
func volumeNamed(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// mountNamed is c's mount of the volume called name, or nil.
func mountNamed(c *corev1.Container, name string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// allContainers is the pod's init containers, then its containers.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// runAsUser is the user c runs as, from its own security context or the
// pod's; ok is false when neither says (the image's USER then decides).
func runAsUser(spec *corev1.PodSpec, c *corev1.Container) (uid int64, ok bool) {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return *c.SecurityContext.RunAsUser, true
	}
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil {
		return *spec.SecurityContext.RunAsUser, true
	}
	return 0, false
}

// checkReferences reports each Secret and claim the pod names that the
// manifests lack, and each mount of a volume the pod does not have.
func (s *Set) checkReferences(ps *problems, spec *corev1.PodSpec) {
	for _, v := range spec.Volumes {
		if v.Secret != nil && s.Secrets[v.Secret.SecretName] == nil {
			ps.add(RuleReferences, "volume %q: Secret %q is not in the manifests", v.Name, v.Secret.SecretName)
		}
		if v.PersistentVolumeClaim != nil && s.Claims[v.PersistentVolumeClaim.ClaimName] == nil {
			ps.add(RuleReferences, "volume %q: PersistentVolumeClaim %q is not in the manifests", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	for _, c := range allContainers(spec) {
		for _, vm := range c.VolumeMounts {
			if volumeNamed(spec, vm.Name) == nil {
				ps.add(RuleReferences, "container %q mounts %q, which is not a volume of the pod", c.Name, vm.Name)
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && s.Secrets[ef.SecretRef.Name] == nil {
				ps.add(RuleReferences, "container %q: envFrom Secret %q is not in the manifests", c.Name, ef.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && s.Secrets[e.ValueFrom.SecretKeyRef.Name] == nil {
				ps.add(RuleReferences, "container %q: env %s: Secret %q is not in the manifests", c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
}

// checkHardening reports every container that could run as root, write
// its root filesystem, keep a capability, gain privileges or run without
// the runtime's seccomp profile, and a pod that mounts an API token.
func checkHardening(ps *problems, spec *corev1.PodSpec) {
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		ps.add(RuleHardening, "automountServiceAccountToken is not false: pop2imap never talks to the API server")
	}
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	for _, c := range allContainers(spec) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = pod.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			ps.add(RuleHardening, "container %q: runAsNonRoot is not true", c.Name)
		}
		if uid, ok := runAsUser(spec, c); ok && uid == 0 {
			ps.add(RuleHardening, "container %q: runAsUser is 0 (root)", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			ps.add(RuleHardening, "container %q is privileged", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			ps.add(RuleHardening, "container %q: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			ps.add(RuleHardening, "container %q: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.Capabilities == nil || !dropsAll(sc.Capabilities.Drop) || len(sc.Capabilities.Add) > 0 {
			ps.add(RuleHardening, "container %q: capabilities must drop ALL and add none", c.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = pod.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			ps.add(RuleHardening, "container %q: seccompProfile is not RuntimeDefault", c.Name)
		}
	}
}

func dropsAll(caps []corev1.Capability) bool {
	for _, c := range caps {
		if c == "ALL" {
			return true
		}
	}
	return false
}

// minMemoryLimit is pop2imap's memory bound for a batch process: its
// container's limit must leave at least that.
var minMemoryLimit = resource.MustParse("128Mi")

// checkResources reports a container without a memory limit or with a
// request over its limit, and a pop2imap container limited below its
// bound.
func checkResources(ps *problems, spec *corev1.PodSpec) {
	for _, c := range allContainers(spec) {
		limit, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok {
			ps.add(RuleResources, "container %q has no memory limit", c.Name)
			continue
		}
		if req, ok := c.Resources.Requests[corev1.ResourceMemory]; ok && req.Cmp(limit) > 0 {
			ps.add(RuleResources, "container %q requests %s of memory, over its limit %s", c.Name, req.String(), limit.String())
		}
		if runsPop2imap(c) && limit.Cmp(minMemoryLimit) < 0 {
			ps.add(RuleResources, "container %q: memory limit %s is below pop2imap's bound of %s", c.Name, limit.String(), minMemoryLimit.String())
		}
	}
}

package validate

import (
	"bytes"
	"encoding/csv"
	"path"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// chmod600 matches the step of an init container's script that leaves
// the copied files readable by their owner only.
var chmod600 = regexp.MustCompile(`(chmod|install -m) 0?600\b`)

// checkAccounts reports an --accounts file that pop2imap would refuse or
// that does not come from a Secret of the manifests.
//
// pop2imap refuses a CSV its group or others can read. A Secret volume
// cannot give a non-root user such a file: with fsGroup set, the kubelet
// adds group read to its files whatever defaultMode says; without, the
// files are root's, and a mode that lets the user read them lets everyone.
// So the CSV must be a copy, made by an init container running as
// pop2imap's user, with mode 0600, in an emptyDir.
func (s *Set) checkAccounts(ps *problems, spec *corev1.PodSpec, c *corev1.Container) {
	p, ok := flagValue(c.Args, "--accounts")
	if !ok {
		ps.add(RuleAccounts, "args have no --accounts")
		return
	}
	if !path.IsAbs(p) {
		ps.add(RuleAccounts, "--accounts %q is not an absolute path", p)
		return
	}
	m, vol, rel := mountOf(spec, c, p)
	switch {
	case m == nil || vol == nil:
		ps.add(RuleAccounts, "no volume is mounted at --accounts %s", p)
		return
	case vol.Secret != nil:
		ps.add(RuleAccounts, "--accounts %s is read straight from Secret %q: its files are group-readable with fsGroup and root's without, and pop2imap refuses a CSV others can read; copy it to an emptyDir with mode 0600 in an init container", p, vol.Secret.SecretName)
		return
	case vol.EmptyDir == nil:
		ps.add(RuleAccounts, "--accounts %s is on volume %q, which is not an emptyDir filled from a Secret", p, vol.Name)
		return
	}
	if vol.EmptyDir.Medium != corev1.StorageMediumMemory {
		ps.add(RuleAccounts, "emptyDir %q is not medium Memory: the passwords would be written to the node's disk", vol.Name)
	}
	if !m.ReadOnly {
		ps.add(RuleAccounts, "container %q mounts %q writable; it only reads it", c.Name, vol.Name)
	}
	filled := false
	for i := range spec.InitContainers {
		ic := &spec.InitContainers[i]
		dst := mountNamed(ic, vol.Name)
		if dst == nil || dst.ReadOnly {
			continue
		}
		for j := range ic.VolumeMounts {
			src := &ic.VolumeMounts[j]
			sv := volumeNamed(spec, src.Name)
			if sv == nil || sv.Secret == nil {
				continue
			}
			filled = true
			s.checkCopy(ps, spec, c, ic, src, sv, dst, rel)
		}
	}
	if !filled {
		ps.add(RuleAccounts, "no init container copies a Secret into volume %q, where --accounts %s is", vol.Name, p)
	}
}

// checkCopy checks one init container that copies Secret volume sv
// (mounted at src) into the emptyDir mounted at dst, where pop2imap reads
// the CSV at rel.
func (s *Set) checkCopy(ps *problems, spec *corev1.PodSpec, c, ic *corev1.Container, src *corev1.VolumeMount, sv *corev1.Volume, dst *corev1.VolumeMount, rel string) {
	script := strings.Join(append(slices.Clone(ic.Command), ic.Args...), " ")
	if !strings.Contains(script, path.Clean(src.MountPath)) || !strings.Contains(script, path.Clean(dst.MountPath)) || !chmod600.MatchString(script) {
		ps.add(RuleAccounts, "init container %q must copy %s into %s and chmod 0600 the copies", ic.Name, src.MountPath, dst.MountPath)
	}
	uidCopy, ok1 := runAsUser(spec, ic)
	uidRead, ok2 := runAsUser(spec, c)
	if !ok1 || !ok2 || uidCopy != uidRead {
		ps.add(RuleAccounts, "init container %q and container %q must have one runAsUser: only the copy's owner can read it", ic.Name, c.Name)
	}
	secret := s.Secrets[sv.Secret.SecretName]
	if secret == nil {
		return // checkReferences reports it
	}
	key := rel
	if len(sv.Secret.Items) > 0 {
		key = ""
		for _, it := range sv.Secret.Items {
			if it.Path == rel {
				key = it.Key
			}
		}
		if key == "" {
			ps.add(RuleAccounts, "Secret volume %q projects no file %s", sv.Name, rel)
			return
		}
	}
	data, ok := secretValue(secret, key)
	if !ok {
		ps.add(RuleAccounts, "Secret %q has no key %q, the file --accounts names", secret.Name, key)
		return
	}
	// encoding/csv is RFC 4180, as pop2imap's reader is, and by default
	// wants every row as long as the header.
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	switch {
	case err != nil:
		ps.add(RuleAccounts, "Secret %q, key %q: %v", secret.Name, key, err)
	case len(rows) == 0:
		ps.add(RuleAccounts, "Secret %q, key %q: no header row", secret.Name, key)
	}
}

// checkStateDir reports a --state-dir that is not on a claim of the
// manifests, or that the Job's pods cannot all write; it returns the
// claim's name, "" when there is none.
func (s *Set) checkStateDir(ps *problems, spec *corev1.PodSpec, c *corev1.Container, writes, shared bool) string {
	d, ok := flagValue(c.Args, "--state-dir")
	if !ok {
		ps.add(RuleStateDir, "args have no --state-dir")
		return ""
	}
	if !path.IsAbs(d) {
		ps.add(RuleStateDir, "--state-dir %q is not an absolute path", d)
		return ""
	}
	m, vol, _ := mountOf(spec, c, d)
	switch {
	case m == nil || vol == nil:
		ps.add(RuleStateDir, "no volume is mounted at --state-dir %s", d)
		return ""
	case vol.PersistentVolumeClaim == nil:
		ps.add(RuleStateDir, "--state-dir %s is on volume %q, not a PersistentVolumeClaim: the journals and results would go with the pod", d, vol.Name)
		return ""
	}
	name := vol.PersistentVolumeClaim.ClaimName
	if writes && (m.ReadOnly || vol.PersistentVolumeClaim.ReadOnly) {
		ps.add(RuleStateDir, "container %q mounts claim %q read-only at --state-dir %s", c.Name, name, d)
	}
	if claim := s.Claims[name]; shared && claim != nil && !slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteMany) {
		ps.add(RuleStateDir, "claim %q is not ReadWriteMany, yet the Job's shards run in parallel pods on any node", name)
	}
	return name
}

// checkSpool reports a pop2imap container whose temporary directory, where
// messages over 1 MiB are spooled, is not writable or is in memory.
func checkSpool(ps *problems, spec *corev1.PodSpec, c *corev1.Container) {
	dir := "/tmp"
	for _, e := range c.Env {
		if e.Name == "TMPDIR" && e.Value != "" {
			dir = e.Value
		}
	}
	m, vol, _ := mountOf(spec, c, dir)
	switch {
	case m == nil || vol == nil:
		ps.add(RuleSpool, "no volume at %s: on a read-only root filesystem, messages over 1 MiB cannot be spooled", dir)
	case m.ReadOnly:
		ps.add(RuleSpool, "%s is mounted read-only", dir)
	case vol.EmptyDir != nil && vol.EmptyDir.Medium == corev1.StorageMediumMemory:
		ps.add(RuleSpool, "%s is memory-backed: spooled messages would count against the memory limit", dir)
	}
}

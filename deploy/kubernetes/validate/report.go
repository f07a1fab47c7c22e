package validate

import corev1 "k8s.io/api/core/v1"

// checkReportPod checks a pod that runs `pop2imap batch report` on the
// Jobs' state volume: jobs holds the claims ("claim NAME") and images
// ("image REF") of the Jobs.
func (s *Set) checkReportPod(pod *corev1.Pod, jobs map[string]bool) *problems {
	ps := &problems{object: "Pod " + pod.Name}
	spec := &pod.Spec
	s.checkReferences(ps, spec)
	checkHardening(ps, spec)
	checkResources(ps, spec)
	var c *corev1.Container
	for _, x := range allContainers(spec) {
		if runsPop2imap(x, "batch", "report") {
			c = x
		}
	}
	if c == nil {
		ps.add(RuleCommand, "no container runs pop2imap batch report")
		return ps
	}
	if claim := s.checkStateDir(ps, spec, c, false, false); claim != "" && !jobs["claim "+claim] {
		ps.add(RuleStateDir, "--state-dir is on claim %q, where no Job keeps its state", claim)
	}
	if !jobs["image "+c.Image] {
		ps.add(RuleImage, "container %q runs %q, which is not the image of a Job", c.Name, c.Image)
	}
	outputs := 0
	for _, flag := range []string{"--report", "--html"} {
		p, ok := flagValue(c.Args, flag)
		if !ok {
			continue
		}
		outputs++
		m, vol, _ := mountOf(spec, c, p)
		switch {
		case m == nil || vol == nil:
			ps.add(RuleOutput, "%s %s is on no volume, and the root filesystem is read-only", flag, p)
		case m.ReadOnly:
			ps.add(RuleOutput, "%s %s is on volume %q, which container %q mounts read-only", flag, p, vol.Name, c.Name)
		case !keptByAnother(spec, c, vol.Name):
			ps.add(RuleOutput, "%s %s: no other container keeps volume %q for kubectl exec to read", flag, p, vol.Name)
		}
	}
	if outputs == 0 {
		ps.add(RuleOutput, "container %q writes neither --report nor --html", c.Name)
	}
	return ps
}

// keptByAnother tells whether a container of the pod other than c (an
// init container that has ended) mounts the volume called name.
func keptByAnother(spec *corev1.PodSpec, c *corev1.Container, name string) bool {
	for i := range spec.Containers {
		if x := &spec.Containers[i]; x != c && mountNamed(x, name) != nil {
			return true
		}
	}
	return false
}

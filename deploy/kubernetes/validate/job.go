package validate

import (
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// ContainerName is the name of the container that runs pop2imap batch in
// the Job; the pod failure policy's exit-code rules name it.
const ContainerName = "pop2imap"

// indexFieldPath is the downward API path of a pod's completion index.
const indexFieldPath = "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"

// Check tests every Job and Pod of the manifests against the rules and
// returns one *Problem per broken rule and object, nil when all hold.
// Every Pod is taken for a report pod (report.yaml).
func (s *Set) Check() []error {
	var errs []error
	written := map[string]bool{} // the claims and images of the Jobs
	for _, job := range s.Jobs {
		ps := s.checkJob(job, written)
		errs = append(errs, ps.errs...)
	}
	for _, pod := range s.Pods {
		errs = append(errs, s.checkReportPod(pod, written).errs...)
	}
	return errs
}

// checkJob checks one Job that runs pop2imap batch in shards, and notes
// the claim it keeps its state on and the image it runs in jobs.
func (s *Set) checkJob(job *batchv1.Job, jobs map[string]bool) *problems {
	ps := &problems{object: "Job " + job.Name}
	spec := &job.Spec.Template.Spec
	s.checkReferences(ps, spec)
	checkHardening(ps, spec)
	checkResources(ps, spec)

	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		ps.add(RuleIndexed, "completionMode is not Indexed: pods get no index to choose their shard by")
	}
	n := int32(0)
	if job.Spec.Completions == nil || *job.Spec.Completions < 1 {
		ps.add(RuleIndexed, "completions is not set: it is the number of shards")
	} else {
		n = *job.Spec.Completions
	}
	if job.Spec.BackoffLimitPerIndex == nil {
		ps.add(RuleBackoffPerIndex, "backoffLimitPerIndex is not set: one shard's retries would count against all, and FailIndex needs it")
	}
	if m := job.Spec.MaxFailedIndexes; m == nil {
		ps.add(RuleBackoffPerIndex, "maxFailedIndexes is not set")
	} else if n > 0 && *m > n {
		ps.add(RuleBackoffPerIndex, "maxFailedIndexes %d is over completions %d", *m, n)
	}
	checkFailurePolicy(ps, job)

	c := containerNamed(spec.Containers, ContainerName)
	if c == nil {
		ps.add(RuleCommand, "no container named %q", ContainerName)
		return ps
	}
	jobs["image "+c.Image] = true
	if !runsPop2imap(c, "batch") || runsPop2imap(c, "batch", "report") {
		ps.add(RuleCommand, "container %q does not run the image's pop2imap with args batch ...", c.Name)
	}
	checkShard(ps, c, n)
	parallel := job.Spec.Parallelism == nil || *job.Spec.Parallelism > 1
	s.checkAccounts(ps, spec, c)
	if claim := s.checkStateDir(ps, spec, c, true, parallel); claim != "" {
		jobs["claim "+claim] = true
	}
	checkSpool(ps, spec, c)
	return ps
}

func containerNamed(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// checkShard reports args without --shard $(JOB_COMPLETION_INDEX)/n, and
// a JOB_COMPLETION_INDEX that does not come from the downward API.
func checkShard(ps *problems, c *corev1.Container, n int32) {
	want := "$(JOB_COMPLETION_INDEX)/" + strconv.Itoa(int(n))
	if got, ok := flagValue(c.Args, "--shard"); !ok {
		ps.add(RuleShardArg, "args have no --shard: every pod would run every account")
	} else if n > 0 && got != want {
		ps.add(RuleShardArg, "--shard is %q, want %q (completions is %d)", got, want, n)
	}
	var env *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "JOB_COMPLETION_INDEX" {
			env = &c.Env[i]
		}
	}
	switch {
	case env == nil:
		ps.add(RuleIndexEnv, "container %q does not define JOB_COMPLETION_INDEX", c.Name)
	case env.ValueFrom == nil || env.ValueFrom.FieldRef == nil || env.ValueFrom.FieldRef.FieldPath != indexFieldPath:
		ps.add(RuleIndexEnv, "JOB_COMPLETION_INDEX does not come from the downward API field %s", indexFieldPath)
	}
}

// checkFailurePolicy reports a policy under which pop2imap's exit codes 2
// (usage) or 3 (accounts failed or left messages) would not fail their
// index at once, exit code 1 (the batch could not run) would not be
// retried, or a disrupted pod would count as a failure.
func checkFailurePolicy(ps *problems, job *batchv1.Job) {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		ps.add(RuleFailurePolicy, "restartPolicy is %q: a pod failure policy needs Never", job.Spec.Template.Spec.RestartPolicy)
	}
	policy := job.Spec.PodFailurePolicy
	if policy == nil {
		ps.add(RuleFailurePolicy, "no podFailurePolicy")
		return
	}
	for _, code := range []int32{2, 3} {
		r := exitRule(policy, ContainerName, code)
		switch {
		case r == nil || r.Action != batchv1.PodFailurePolicyActionFailIndex:
			ps.add(RuleFailurePolicy, "exit code %d of container %q leads to %s, want FailIndex: a retry now fails the same way", code, ContainerName, actionOf(r))
		case r.OnExitCodes.ContainerName == nil:
			ps.add(RuleFailurePolicy, "the rule for exit code %d names no container: it would apply to the init containers too; name %q", code, ContainerName)
		}
	}
	if r := exitRule(policy, ContainerName, 1); r != nil && r.Action != batchv1.PodFailurePolicyActionCount {
		ps.add(RuleFailurePolicy, "exit code 1 of container %q leads to %s: it must count towards backoffLimitPerIndex and be retried", ContainerName, r.Action)
	}
	ignores := slices.ContainsFunc(policy.Rules, func(r batchv1.PodFailurePolicyRule) bool {
		return r.Action == batchv1.PodFailurePolicyActionIgnore && slices.ContainsFunc(r.OnPodConditions, func(p batchv1.PodFailurePolicyOnPodConditionsPattern) bool {
			return p.Type == corev1.DisruptionTarget && p.Status == corev1.ConditionTrue
		})
	})
	if !ignores {
		ps.add(RuleFailurePolicy, "no rule ignores the DisruptionTarget condition: a preempted or evicted pod would use up its index's retries")
	}
}

// exitRule is the first rule of policy that matches the exit code of the
// named container, as the Job controller picks it, or nil: then the
// failure counts towards the index's backoff limit.
func exitRule(policy *batchv1.PodFailurePolicy, container string, code int32) *batchv1.PodFailurePolicyRule {
	for i, r := range policy.Rules {
		e := r.OnExitCodes
		if e == nil || (e.ContainerName != nil && *e.ContainerName != container) {
			continue
		}
		in := slices.Contains(e.Values, code)
		if (e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) || (e.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in) {
			return &policy.Rules[i]
		}
	}
	return nil
}

func actionOf(r *batchv1.PodFailurePolicyRule) string {
	if r == nil {
		return "no rule (counted, then retried)"
	}
	return string(r.Action)
}

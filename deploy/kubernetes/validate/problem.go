package validate

import "fmt"

// Rule names one property that the manifests must have.
type Rule string

// The rules Set.Check enforces.
const (
	// RuleIndexed: the Job is Indexed and says how many completions it has.
	RuleIndexed Rule = "indexed"
	// RuleCommand: the pop2imap container runs `pop2imap batch` (or, in
	// the report pod, `pop2imap batch report`).
	RuleCommand Rule = "command"
	// RuleShardArg: the args hold --shard $(JOB_COMPLETION_INDEX)/N with N
	// equal to the Job's completions.
	RuleShardArg Rule = "shard-arg"
	// RuleIndexEnv: JOB_COMPLETION_INDEX comes from the downward API, the
	// annotation batch.kubernetes.io/job-completion-index.
	RuleIndexEnv Rule = "index-env"
	// RuleBackoffPerIndex: backoffLimitPerIndex is set, and
	// maxFailedIndexes is set and at most completions.
	RuleBackoffPerIndex Rule = "backoff-per-index"
	// RuleFailurePolicy: pop2imap's exit codes 2 and 3 fail their index,
	// exit code 1 is retried, and pod disruptions are ignored.
	RuleFailurePolicy Rule = "pod-failure-policy"
	// RuleReferences: every Secret and claim a pod names is in the
	// manifests, and every mount names a volume of the pod.
	RuleReferences Rule = "references"
	// RuleAccounts: --accounts is a file that only pop2imap's user can
	// read, copied from a Secret of the manifests that holds it.
	RuleAccounts Rule = "accounts"
	// RuleStateDir: --state-dir is on the claim, shared by the Job's pods
	// and read by the report.
	RuleStateDir Rule = "state-dir"
	// RuleSpool: the temporary directory is writable and not in memory.
	RuleSpool Rule = "spool"
	// RuleOutput: the report pod writes its reports to a writable volume
	// that a second container keeps for kubectl exec.
	RuleOutput Rule = "output"
	// RuleImage: the report pod runs the image the Job runs.
	RuleImage Rule = "image"
	// RuleHardening: non-root, read-only root filesystem, no
	// capabilities, no privilege escalation, seccomp RuntimeDefault, no
	// service account token.
	RuleHardening Rule = "hardening"
	// RuleResources: every container has a memory limit, pop2imap's at
	// least its 128 MiB bound, and requests no larger than limits.
	RuleResources Rule = "resources"
)

// Problem is an object of the manifests that breaks a rule.
type Problem struct {
	Object string // "Job pop2imap-batch"
	Rule   Rule
	Msg    string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("validate: %s: %s: %s", p.Object, p.Rule, p.Msg)
}

// problems collects the Problems of one object.
type problems struct {
	object string
	errs   []error
}

func (ps *problems) add(rule Rule, format string, args ...any) {
	ps.errs = append(ps.errs, &Problem{Object: ps.object, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

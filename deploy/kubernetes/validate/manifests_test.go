package validate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// manifestDir is deploy/kubernetes, seen from this package's directory,
// where go test runs.
const manifestDir = ".."

// load decodes the real manifests, or ends the test.
func load(t *testing.T) *Set {
	t.Helper()
	s, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestManifests proves that every manifest in deploy/kubernetes decodes
// strictly into its API type and keeps every rule, and that there is
// something to check: a sharded Job, the report pod, the Secret and the
// claim they use.
func TestManifests(t *testing.T) {
	s := load(t)
	if len(s.Jobs) == 0 || len(s.Pods) == 0 || len(s.Secrets) == 0 || len(s.Claims) == 0 {
		t.Fatalf("found %d Jobs, %d Pods, %d Secrets, %d claims; want at least one of each", len(s.Jobs), len(s.Pods), len(s.Secrets), len(s.Claims))
	}
	for _, err := range s.Check() {
		t.Error(err)
	}
}

// TestLoadStrict proves that Load refuses what kubectl apply
// --validate=strict refuses: an unknown or misspelt field at any depth, a
// duplicate key, a value of the wrong type; and a kind it cannot check.
func TestLoadStrict(t *testing.T) {
	const claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\n"
	tests := []struct {
		name    string
		yaml    string
		wantDoc int   // the document the *DecodeError names; 0: no error
		wantIs  error // errors.Is the cause, when set
	}{
		{"valid, two documents and a comment-only one", claim + "spec:\n  accessModes: [ReadWriteMany]\n---\n# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: v\n", 0, nil},
		{"unknown top-level field", claim + "spec:\n  accessModes: [ReadWriteMany]\nstatuss: {}\n", 1, nil},
		{"misspelt nested field", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          imagePullPolicyy: Always\n", 1, nil},
		{"field of another version of the API", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  backoffLimitPerIndexx: 1\n", 1, nil},
		{"field name in the wrong case", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completionmode: Indexed\n", 1, nil},
		{"duplicate key", claim + "metadata:\n  name: d\n", 1, nil},
		{"wrong type", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completions: eight\n", 1, nil},
		{"second document bad", claim + "---\n" + "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringdata: {}\n", 2, nil},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n", 1, ErrUnknownKind},
		{"no kind", "metadata:\n  name: x\n", 1, ErrUnknownKind},
		{"same name twice", claim + "---\n" + claim, 2, ErrDuplicate},
		{"no name", "apiVersion: v1\nkind: Secret\nmetadata: {}\n", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if tt.wantDoc == 0 {
				if err != nil {
					t.Fatalf("Load: %v, want no error", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Load: %v, want a *DecodeError", err)
			}
			if de.File != "m.yaml" || de.Doc != tt.wantDoc {
				t.Errorf("error names %s, document %d; want m.yaml, document %d", de.File, de.Doc, tt.wantDoc)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Load: %v, want it to wrap %v", err, tt.wantIs)
			}
		})
	}
}

// TestLoadReadsYmlToo proves that a .yml file is not skipped: a bad one
// fails the load.
func TestLoadReadsYmlToo(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.yml"), []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var de *DecodeError
	if _, err := Load(dir); !errors.As(err, &de) || de.File != "x.yml" {
		t.Fatalf("Load: %v, want a *DecodeError naming x.yml", err)
	}
}

// TestRules proves that each rule can fail: every case breaks the real
// manifests in one way and wants the rule that says so, or, for a change
// that keeps the meaning, no problem at all.
func TestRules(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, s *Set)
		want   Rule // "" for no problem
	}{
		{"as shipped", func(t *testing.T, s *Set) {}, ""},
		{"--shard=value form", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			i := slices.Index(c.Args, "--shard")
			c.Args = slices.Replace(c.Args, i, i+2, "--shard="+c.Args[i+1])
		}, ""},
		{"not Indexed", func(t *testing.T, s *Set) {
			m := batchv1.NonIndexedCompletion
			s.Jobs[0].Spec.CompletionMode = &m
		}, RuleIndexed},
		{"no completions", func(t *testing.T, s *Set) { s.Jobs[0].Spec.Completions = nil }, RuleIndexed},
		{"completions differ from the shard count", func(t *testing.T, s *Set) {
			n := *s.Jobs[0].Spec.Completions - 1
			s.Jobs[0].Spec.Completions = &n
			s.Jobs[0].Spec.MaxFailedIndexes = &n
		}, RuleShardArg},
		{"no --shard", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			i := slices.Index(c.Args, "--shard")
			c.Args = slices.Delete(c.Args, i, i+2)
		}, RuleShardArg},
		{"shard from another variable", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			i := slices.Index(c.Args, "--shard")
			c.Args[i+1] = "$(INDEX)/8"
		}, RuleShardArg},
		{"index env missing", func(t *testing.T, s *Set) { batchContainer(t, s).Env = nil }, RuleIndexEnv},
		{"index from a label", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.Env[0].ValueFrom.FieldRef.FieldPath = "metadata.labels['batch.kubernetes.io/job-completion-index']"
		}, RuleIndexEnv},
		{"index as a literal", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.Env[0] = corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", Value: "0"}
		}, RuleIndexEnv},
		{"no backoffLimitPerIndex", func(t *testing.T, s *Set) { s.Jobs[0].Spec.BackoffLimitPerIndex = nil }, RuleBackoffPerIndex},
		{"no maxFailedIndexes", func(t *testing.T, s *Set) { s.Jobs[0].Spec.MaxFailedIndexes = nil }, RuleBackoffPerIndex},
		{"maxFailedIndexes over completions", func(t *testing.T, s *Set) {
			n := *s.Jobs[0].Spec.Completions + 1
			s.Jobs[0].Spec.MaxFailedIndexes = &n
		}, RuleBackoffPerIndex},
		{"no pod failure policy", func(t *testing.T, s *Set) { s.Jobs[0].Spec.PodFailurePolicy = nil }, RuleFailurePolicy},
		{"exit 3 retried", func(t *testing.T, s *Set) { exitCodeRule(t, s).OnExitCodes.Values = []int32{2} }, RuleFailurePolicy},
		{"exit 2 and 3 fail the whole Job", func(t *testing.T, s *Set) {
			exitCodeRule(t, s).Action = batchv1.PodFailurePolicyActionFailJob
		}, RuleFailurePolicy},
		{"exit 1 not retried", func(t *testing.T, s *Set) { exitCodeRule(t, s).OnExitCodes.Values = []int32{1, 2, 3} }, RuleFailurePolicy},
		{"exit rule for every container", func(t *testing.T, s *Set) { exitCodeRule(t, s).OnExitCodes.ContainerName = nil }, RuleFailurePolicy},
		{"exit rule for another container", func(t *testing.T, s *Set) {
			other := "accounts"
			exitCodeRule(t, s).OnExitCodes.ContainerName = &other
		}, RuleFailurePolicy},
		{"an earlier rule counts exit 3", func(t *testing.T, s *Set) {
			p := s.Jobs[0].Spec.PodFailurePolicy
			count := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}}
			p.Rules = append([]batchv1.PodFailurePolicyRule{count}, p.Rules...)
		}, RuleFailurePolicy},
		{"disruptions counted", func(t *testing.T, s *Set) {
			p := s.Jobs[0].Spec.PodFailurePolicy
			p.Rules = slices.DeleteFunc(p.Rules, func(r batchv1.PodFailurePolicyRule) bool { return len(r.OnPodConditions) > 0 })
		}, RuleFailurePolicy},
		{"restartPolicy OnFailure", func(t *testing.T, s *Set) {
			s.Jobs[0].Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}, RuleFailurePolicy},
		{"accounts Secret not in the manifests", func(t *testing.T, s *Set) {
			delete(s.Secrets, accountsSecretVolume(t, s).Secret.SecretName)
		}, RuleReferences},
		{"env Secret not in the manifests", func(t *testing.T, s *Set) {
			delete(s.Secrets, batchContainer(t, s).EnvFrom[0].SecretRef.Name)
		}, RuleReferences},
		{"state claim not in the manifests", func(t *testing.T, s *Set) { clear(s.Claims) }, RuleReferences},
		{"CSV read straight from the Secret volume", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: accountsSecretVolume(t, s).Name, MountPath: "/secret", ReadOnly: true})
			setFlag(t, c, "--accounts", "/secret/accounts.csv")
		}, RuleAccounts},
		{"CSV on the state volume", func(t *testing.T, s *Set) {
			setFlag(t, batchContainer(t, s), "--accounts", "/state/accounts.csv")
		}, RuleAccounts},
		{"CSV nowhere mounted", func(t *testing.T, s *Set) {
			setFlag(t, batchContainer(t, s), "--accounts", "/etc/accounts.csv")
		}, RuleAccounts},
		{"CSV name not a key of the Secret", func(t *testing.T, s *Set) {
			setFlag(t, batchContainer(t, s), "--accounts", "/accounts/users.csv")
		}, RuleAccounts},
		{"copy without chmod", func(t *testing.T, s *Set) {
			ic := &s.Jobs[0].Spec.Template.Spec.InitContainers[0]
			ic.Command[len(ic.Command)-1] = "cp -L /secret/* /accounts/"
		}, RuleAccounts},
		{"copy as another user", func(t *testing.T, s *Set) {
			ic := &s.Jobs[0].Spec.Template.Spec.InitContainers[0]
			uid := int64(1000)
			ic.SecurityContext.RunAsUser = &uid
		}, RuleAccounts},
		{"no init container", func(t *testing.T, s *Set) { s.Jobs[0].Spec.Template.Spec.InitContainers = nil }, RuleAccounts},
		{"copy on the node's disk", func(t *testing.T, s *Set) {
			for i, v := range s.Jobs[0].Spec.Template.Spec.Volumes {
				if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory {
					s.Jobs[0].Spec.Template.Spec.Volumes[i].EmptyDir.Medium = corev1.StorageMediumDefault
				}
			}
		}, RuleAccounts},
		{"CSV not RFC 4180", func(t *testing.T, s *Set) {
			secret := s.Secrets[accountsSecretVolume(t, s).Secret.SecretName]
			secret.StringData["accounts.csv"] = "name,pop3_server\nalice,\"pop.example\n"
		}, RuleAccounts},
		{"state dir off the claim", func(t *testing.T, s *Set) {
			setFlag(t, batchContainer(t, s), "--state-dir", "/var/lib/pop2imap")
		}, RuleStateDir},
		{"state dir on an emptyDir", func(t *testing.T, s *Set) {
			setFlag(t, batchContainer(t, s), "--state-dir", "/tmp/state")
		}, RuleStateDir},
		{"state claim ReadWriteOnce", func(t *testing.T, s *Set) {
			for _, c := range s.Claims {
				c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
			}
		}, RuleStateDir},
		{"state mounted read-only", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].MountPath == "/state" {
					c.VolumeMounts[i].ReadOnly = true
				}
			}
		}, RuleStateDir},
		{"report reads another claim", func(t *testing.T, s *Set) {
			s.Claims["other"] = s.Claims["pop2imap-state"].DeepCopy()
			for i, v := range s.Pods[0].Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					s.Pods[0].Spec.Volumes[i].PersistentVolumeClaim.ClaimName = "other"
				}
			}
		}, RuleStateDir},
		{"report runs another image", func(t *testing.T, s *Set) { reportContainer(t, s).Image = "pop2imap:old" }, RuleImage},
		{"report written to the read-only root", func(t *testing.T, s *Set) {
			setFlag(t, reportContainer(t, s), "--html", "/report.html")
		}, RuleOutput},
		{"report written where nobody keeps it", func(t *testing.T, s *Set) {
			s.Pods[0].Spec.Containers[0].VolumeMounts = nil
		}, RuleOutput},
		{"report pod runs no report", func(t *testing.T, s *Set) {
			reportContainer(t, s).Args = []string{"batch", "--state-dir", "/state"}
		}, RuleCommand},
		{"Job runs the report", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.Args = append([]string{"batch", "report"}, c.Args[1:]...)
		}, RuleCommand},
		{"Job container renamed", func(t *testing.T, s *Set) { batchContainer(t, s).Name = "main" }, RuleCommand},
		{"spool memory-backed", func(t *testing.T, s *Set) {
			for i, v := range s.Jobs[0].Spec.Template.Spec.Volumes {
				if v.Name == "tmp" {
					s.Jobs[0].Spec.Template.Spec.Volumes[i].EmptyDir.Medium = corev1.StorageMediumMemory
				}
			}
		}, RuleSpool},
		{"no spool volume", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" })
		}, RuleSpool},
		{"TMPDIR on the read-only root", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.Env = append(c.Env, corev1.EnvVar{Name: "TMPDIR", Value: "/var/tmp"})
		}, RuleSpool},
		{"writable root filesystem", func(t *testing.T, s *Set) {
			f := false
			batchContainer(t, s).SecurityContext.ReadOnlyRootFilesystem = &f
		}, RuleHardening},
		{"capabilities kept", func(t *testing.T, s *Set) { batchContainer(t, s).SecurityContext.Capabilities = nil }, RuleHardening},
		{"a capability added", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
		}, RuleHardening},
		{"privilege escalation allowed", func(t *testing.T, s *Set) {
			s.Pods[0].Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}, RuleHardening},
		{"runs as root", func(t *testing.T, s *Set) {
			root := int64(0)
			s.Jobs[0].Spec.Template.Spec.SecurityContext.RunAsUser = &root
		}, RuleHardening},
		{"runAsNonRoot unset", func(t *testing.T, s *Set) { s.Pods[0].Spec.SecurityContext.RunAsNonRoot = nil }, RuleHardening},
		{"no seccomp profile", func(t *testing.T, s *Set) { s.Jobs[0].Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, RuleHardening},
		{"service account token mounted", func(t *testing.T, s *Set) {
			s.Jobs[0].Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, RuleHardening},
		{"no memory limit", func(t *testing.T, s *Set) {
			delete(batchContainer(t, s).Resources.Limits, corev1.ResourceMemory)
		}, RuleResources},
		{"memory limit below the bound", func(t *testing.T, s *Set) {
			c := batchContainer(t, s)
			c.Resources.Limits[corev1.ResourceMemory] = resource.MustParse("96Mi")
			c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("64Mi")
		}, RuleResources},
		{"request over limit", func(t *testing.T, s *Set) {
			c := &s.Pods[0].Spec.Containers[0]
			c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}, RuleResources},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := load(t)
			tt.break_(t, s)
			errs := s.Check()
			if tt.want == "" {
				for _, err := range errs {
					t.Error(err)
				}
				return
			}
			found := false
			for _, err := range errs {
				var p *Problem
				if !errors.As(err, &p) {
					t.Errorf("Check returned %v, not a *Problem", err)
				} else if p.Rule == tt.want {
					found = true
					t.Log(p)
				}
			}
			if !found {
				t.Errorf("Check found no %s problem; it returned %v", tt.want, errs)
			}
		})
	}
}

// TestExitRule proves that the policy is read as the Job controller reads
// it: the first matching rule wins, NotIn matches the codes it lists not,
// and a rule for another container does not match.
func TestExitRule(t *testing.T) {
	name := func(s string) *string { return &s }
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: name("other"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2}}},
		{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: name("pop2imap"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2, 3}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3, 4}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2, 3, 4}}},
	}}
	tests := []struct {
		container string
		code      int32
		want      batchv1.PodFailurePolicyAction // "" for no rule
	}{
		{"pop2imap", 2, batchv1.PodFailurePolicyActionFailIndex},
		{"pop2imap", 3, batchv1.PodFailurePolicyActionFailIndex},
		{"pop2imap", 4, batchv1.PodFailurePolicyActionCount},
		{"pop2imap", 1, ""},
		{"pop2imap", 137, batchv1.PodFailurePolicyActionFailJob},
		{"other", 2, batchv1.PodFailurePolicyActionFailJob},
		{"other", 3, batchv1.PodFailurePolicyActionCount},
	}
	for _, tt := range tests {
		r := exitRule(policy, tt.container, tt.code)
		got := batchv1.PodFailurePolicyAction("")
		if r != nil {
			got = r.Action
		}
		if got != tt.want {
			t.Errorf("exit %d of %s: %q, want %q", tt.code, tt.container, got, tt.want)
		}
	}
}

// batchContainer is the Job's pop2imap container.
func batchContainer(t *testing.T, s *Set) *corev1.Container {
	t.Helper()
	c := containerNamed(s.Jobs[0].Spec.Template.Spec.Containers, ContainerName)
	if c == nil {
		t.Fatalf("Job %s has no container %s", s.Jobs[0].Name, ContainerName)
	}
	return c
}

// reportContainer is the report pod's pop2imap container.
func reportContainer(t *testing.T, s *Set) *corev1.Container {
	t.Helper()
	for _, c := range allContainers(&s.Pods[0].Spec) {
		if runsPop2imap(c, "batch", "report") {
			return c
		}
	}
	t.Fatalf("Pod %s runs no batch report", s.Pods[0].Name)
	return nil
}

// exitCodeRule is the Job's first rule on exit codes.
func exitCodeRule(t *testing.T, s *Set) *batchv1.PodFailurePolicyRule {
	t.Helper()
	for i, r := range s.Jobs[0].Spec.PodFailurePolicy.Rules {
		if r.OnExitCodes != nil {
			return &s.Jobs[0].Spec.PodFailurePolicy.Rules[i]
		}
	}
	t.Fatal("the Job's pod failure policy has no rule on exit codes")
	return nil
}

// accountsSecretVolume is the Job's Secret volume.
func accountsSecretVolume(t *testing.T, s *Set) *corev1.Volume {
	t.Helper()
	for i, v := range s.Jobs[0].Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			return &s.Jobs[0].Spec.Template.Spec.Volumes[i]
		}
	}
	t.Fatal("the Job has no Secret volume")
	return nil
}

// setFlag replaces the value of flag (written "--flag value") in c's args.
func setFlag(t *testing.T, c *corev1.Container, flag, value string) {
	t.Helper()
	i := slices.Index(c.Args, flag)
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container %s has no %s VALUE in its args", c.Name, flag)
	}
	c.Args[i+1] = value
}

package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Set is every object of the manifests in one directory, by kind.
type Set struct {
	Jobs    []*batchv1.Job
	Pods    []*corev1.Pod
	Secrets map[string]*corev1.Secret                // by name
	Claims  map[string]*corev1.PersistentVolumeClaim // by name
}

// ErrUnknownKind is a document whose apiVersion and kind the validator
// does not know: a manifest it cannot check is an error, not a pass.
var ErrUnknownKind = errors.New("an apiVersion and kind this validator does not know (batch/v1 Job, v1 Pod, v1 Secret, v1 PersistentVolumeClaim)")

// ErrDuplicate is a second object of one kind with the same name.
var ErrDuplicate = errors.New("a second object of this kind with this name")

// DecodeError is a YAML document that is not a valid object of its kind.
type DecodeError struct {
	File string // the file's base name
	Doc  int    // the document's position in the file, from 1
	Kind string // "batch/v1 Job", when the document said
	Err  error
}

func (e *DecodeError) Error() string {
	if e.Kind == "" {
		return fmt.Sprintf("validate: %s, document %d: %v", e.File, e.Doc, e.Err)
	}
	return fmt.Sprintf("validate: %s, document %d (%s): %v", e.File, e.Doc, e.Kind, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Load reads every .yaml and .yml file in dir (not its subdirectories)
// and decodes each of their documents strictly into its API type: an
// unknown field, a duplicate key or a value of the wrong type is a
// *DecodeError, as is a kind Load does not know. Documents that hold
// only comments are skipped.
func Load(dir string) (*Set, error) {
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, fmt.Errorf("validate: list %s: %w", dir, err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	s := &Set{Secrets: map[string]*corev1.Secret{}, Claims: map[string]*corev1.PersistentVolumeClaim{}}
	seen := map[string]bool{}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("validate: read manifest: %w", err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for doc := 1; ; doc++ {
			raw, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, &DecodeError{File: filepath.Base(path), Doc: doc, Err: err}
			}
			kind, name, err := s.add(raw)
			if err == nil && kind != "" {
				if key := kind + " " + name; seen[key] {
					err = ErrDuplicate
				} else {
					seen[key] = true
				}
			}
			if err != nil {
				return nil, &DecodeError{File: filepath.Base(path), Doc: doc, Kind: kind, Err: err}
			}
		}
	}
	return s, nil
}

// add decodes one document into its type and files it in s. It returns
// "" for a document of comments only.
//
// It decodes as the API server's strict field validation does: YAML to
// JSON refusing duplicate keys, then sigs.k8s.io/json, which matches field
// names case-sensitively (encoding/json would take "completionmode" for
// completionMode, which the server drops) and reports unknown fields.
func (s *Set) add(raw []byte) (kind, name string, err error) {
	asJSON, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return "", "", err
	}
	if string(bytes.TrimSpace(asJSON)) == "null" {
		return "", "", nil
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(asJSON, &tm); err != nil {
		return "", "", err
	}
	kind = tm.APIVersion + " " + tm.Kind
	decode := func(obj any, meta *metav1.ObjectMeta) error {
		strict, err := kjson.UnmarshalStrict(asJSON, obj)
		if err != nil {
			return err
		}
		if len(strict) > 0 {
			return errors.Join(strict...)
		}
		if meta.Name == "" {
			return errors.New("metadata.name is empty")
		}
		name = meta.Name
		return nil
	}
	switch kind {
	case "batch/v1 Job":
		var job batchv1.Job
		err = decode(&job, &job.ObjectMeta)
		s.Jobs = append(s.Jobs, &job)
	case "v1 Pod":
		var pod corev1.Pod
		err = decode(&pod, &pod.ObjectMeta)
		s.Pods = append(s.Pods, &pod)
	case "v1 Secret":
		var secret corev1.Secret
		err = decode(&secret, &secret.ObjectMeta)
		s.Secrets[secret.Name] = &secret
	case "v1 PersistentVolumeClaim":
		var claim corev1.PersistentVolumeClaim
		err = decode(&claim, &claim.ObjectMeta)
		s.Claims[claim.Name] = &claim
	default:
		err = ErrUnknownKind
	}
	return kind, name, err
}

// secretValue is the value of key in a Secret as the cluster stores it:
// stringData written over data.
func secretValue(secret *corev1.Secret, key string) ([]byte, bool) {
	if v, ok := secret.StringData[key]; ok {
		return []byte(v), true
	}
	v, ok := secret.Data[key]
	return v, ok
}

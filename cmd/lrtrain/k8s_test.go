package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	kubeflowv1 "github.com/kubeflow/training-operator/pkg/apis/kubeflow.org/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// manifests is every object of k8s/*.yaml, decoded strictly into the types the
// API server and the training operator use, by kind and name.
type manifests struct {
	file        map[string]string // "Kind/name" → file
	configMaps  map[string]*corev1.ConfigMap
	services    map[string]*corev1.Service
	claims      map[string]*corev1.PersistentVolumeClaim
	statefulSet map[string]*appsv1.StatefulSet
	jobs        map[string]*batchv1.Job
	pytorchJobs map[string]*kubeflowv1.PyTorchJob
	applies     map[string][]string // file → the files its `kubectl apply` line names
}

var applyLine = regexp.MustCompile(`(?m)^#\s+kubectl apply((?:\s+-f\s+\S+)+)\s*$`)

// loadManifests reads k8s/: every document must decode with no unknown or
// duplicate field into the type of its apiVersion and kind.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("../../k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests found: %v", err)
	}
	m := &manifests{file: map[string]string{}, configMaps: map[string]*corev1.ConfigMap{},
		services: map[string]*corev1.Service{}, claims: map[string]*corev1.PersistentVolumeClaim{},
		statefulSet: map[string]*appsv1.StatefulSet{}, jobs: map[string]*batchv1.Job{},
		pytorchJobs: map[string]*kubeflowv1.PyTorchJob{}, applies: map[string][]string{}}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := "k8s/" + filepath.Base(file)
		if a := applyLine.FindSubmatch(raw); a != nil {
			for _, f := range strings.Fields(string(a[1])) {
				if f != "-f" {
					m.applies[name] = append(m.applies[name], f)
				}
			}
		}
		for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
			where := fmt.Sprintf("%s document %d", name, i)
			var tm metav1.TypeMeta
			if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "batch/v1 Job":
				obj = &batchv1.Job{}
			case "kubeflow.org/v1 PyTorchJob":
				obj = &kubeflowv1.PyTorchJob{}
			default:
				t.Fatalf("%s: kind %q of %q is not one the test knows", where, tm.Kind, tm.APIVersion)
			}
			if err := sigsyaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s (%s): %v", where, tm.Kind, err)
			}
			meta := obj.(metav1.Object)
			key := tm.Kind + "/" + meta.GetName()
			if prev, dup := m.file[key]; dup {
				t.Fatalf("%s defined in %s and %s", key, prev, name)
			}
			m.file[key] = name
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
			case *corev1.Service:
				m.services[o.Name] = o
			case *corev1.PersistentVolumeClaim:
				m.claims[o.Name] = o
			case *appsv1.StatefulSet:
				m.statefulSet[o.Name] = o
			case *batchv1.Job:
				m.jobs[o.Name] = o
			case *kubeflowv1.PyTorchJob:
				m.pytorchJobs[o.Name] = o
			}
		}
	}
	return m
}

// inApply reports whether key ("Kind/name") is defined in one of the files the
// manifest's `kubectl apply` line applies.
func (m *manifests) inApply(file, key string) bool {
	def, ok := m.file[key]
	if !ok {
		return false
	}
	for _, f := range m.applies[file] {
		if f == def {
			return true
		}
	}
	return false
}

// workload is one pod template that runs lrtrain, with what surrounds it.
type workload struct {
	file, name string
	pod        corev1.PodTemplateSpec
	env        func(c corev1.Container) []corev1.EnvVar // the env the container gets
	gpus       int64                                    // GPUs of a node it is written for
}

func (m *manifests) workloads(t *testing.T) []workload {
	var out []workload
	plain := func(c corev1.Container) []corev1.EnvVar { return c.Env }
	for name, j := range m.jobs {
		out = append(out, workload{file: m.file["Job/"+name], name: "Job/" + name, pod: j.Spec.Template, env: plain})
	}
	for name, pj := range m.pytorchJobs {
		w, ok := pj.Spec.PyTorchReplicaSpecs[kubeflowv1.PyTorchJobReplicaTypeWorker]
		if !ok || w.Replicas == nil {
			t.Fatalf("PyTorchJob/%s has no Worker replicas", name)
		}
		if _, ok := pj.Spec.PyTorchReplicaSpecs[kubeflowv1.PyTorchJobReplicaTypeMaster]; ok {
			t.Errorf("PyTorchJob/%s has a Master: lrtrain's rendezvous is etcd, every pod is a worker", name)
		}
		job := pj
		out = append(out, workload{file: m.file["PyTorchJob/"+name], name: "PyTorchJob/" + name, pod: w.Template,
			env: func(c corev1.Container) []corev1.EnvVar { return operatorEnv(job, c) }})
	}
	if len(out) < 2 {
		t.Fatalf("found %d lrtrain workloads in k8s/, want the Job and the PyTorchJob", len(out))
	}
	return out
}

// operatorEnv is the environment the training operator (v1.8) gives a worker
// of an elastic PyTorchJob without a Master: the container's own variables,
// then PYTHONUNBUFFERED, PET_NPROC_PER_NODE from spec.nprocPerNode, then from
// elasticPolicy PET_RDZV_ENDPOINT (rdzvHost, default "<job>-worker-0", and
// rdzvPort), PET_RDZV_BACKEND (default c10d), PET_NNODES (min:max, else the
// replicas), PET_MAX_RESTARTS, PET_RDZV_ID when set. A later duplicate wins.
func operatorEnv(pj *kubeflowv1.PyTorchJob, c corev1.Container) []corev1.EnvVar {
	env := append([]corev1.EnvVar{}, c.Env...)
	add := func(k, v string) { env = append(env, corev1.EnvVar{Name: k, Value: v}) }
	add("PYTHONUNBUFFERED", "1")
	if pj.Spec.NprocPerNode != nil {
		add("PET_NPROC_PER_NODE", *pj.Spec.NprocPerNode)
	}
	ep := pj.Spec.ElasticPolicy
	if ep == nil {
		add("PET_NNODES", fmt.Sprint(*pj.Spec.PyTorchReplicaSpecs[kubeflowv1.PyTorchJobReplicaTypeWorker].Replicas))
		return env
	}
	host, port := pj.Name+"-worker-0", "<the pytorchjob-port>"
	if ep.RDZVHost != nil {
		host = *ep.RDZVHost
	}
	if ep.RDZVPort != nil {
		port = fmt.Sprint(*ep.RDZVPort)
	}
	add("PET_RDZV_ENDPOINT", host+":"+port)
	backend := string(kubeflowv1.BackendC10D)
	if ep.RDZVBackend != nil {
		backend = string(*ep.RDZVBackend)
	}
	add("PET_RDZV_BACKEND", backend)
	if ep.MinReplicas != nil && ep.MaxReplicas != nil {
		add("PET_NNODES", fmt.Sprintf("%d:%d", *ep.MinReplicas, *ep.MaxReplicas))
	} else {
		add("PET_NNODES", fmt.Sprint(*pj.Spec.PyTorchReplicaSpecs[kubeflowv1.PyTorchJobReplicaTypeWorker].Replicas))
	}
	if ep.MaxRestarts != nil {
		add("PET_MAX_RESTARTS", fmt.Sprint(*ep.MaxRestarts))
	}
	if ep.RDZVID != nil {
		add("PET_RDZV_ID", *ep.RDZVID)
	}
	return env
}

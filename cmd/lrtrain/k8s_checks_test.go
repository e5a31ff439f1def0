package main

import (
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/launch"
)

// podIP stands for the pod's IP where a manifest takes it from status.podIP.
const podIP = "10.1.2.3"

// Every manifest decodes strictly; the etcd Service selects the StatefulSet's
// pods and reaches etcd's client port, which etcd advertises under that name.
func TestKubernetesEtcdServiceReachesEtcd(t *testing.T) {
	m := loadManifests(t)
	svc, sts := m.services["lrtrain-etcd"], m.statefulSet["lrtrain-etcd"]
	if svc == nil || sts == nil {
		t.Fatalf("k8s/etcd.yaml must define Service and StatefulSet lrtrain-etcd")
	}
	for k, v := range svc.Spec.Selector {
		if sts.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the etcd pods' labels %v", k, v, sts.Spec.Template.Labels)
		}
	}
	c := sts.Spec.Template.Spec.Containers[0]
	for _, p := range svc.Spec.Ports {
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == p.TargetPort.IntVal }) {
			t.Errorf("Service port %d targets %v, which the etcd container does not expose", p.Port, p.TargetPort)
		}
	}
	if !slices.Contains(c.Command, "--advertise-client-urls=http://lrtrain-etcd:2379") {
		t.Errorf("etcd does not advertise the Service's address: %v", c.Command)
	}
}

// The Indexed Job and the PyTorchJob start as written: every referenced
// ConfigMap, claim and Service is defined by the files their `kubectl apply`
// line applies; every mount has its volume and every volume a mount; /dev/shm
// is a memory volume; GPUs, CPU and memory are requested; the image is the one
// the Dockerfile builds; the launcher's flags and its environment (the
// operator's, for the PyTorchJob) resolve with the real `lrtrain launch` code
// to the etcd Service; and every path of the run config is on a mount
// (writable where lrtrain writes).
func TestKubernetesWorkloadsStartAsWritten(t *testing.T) {
	m := loadManifests(t)
	image := dockerImageTag(t)
	for _, w := range m.workloads(t) {
		t.Run(w.name, func(t *testing.T) {
			if !slices.Contains(m.applies[w.file], w.file) {
				t.Fatalf("%s: its `kubectl apply` line %v does not apply the file itself", w.file, m.applies[w.file])
			}
			spec := w.pod.Spec
			if len(spec.Containers) != 1 {
				t.Fatalf("%d containers, want the lrtrain one", len(spec.Containers))
			}
			c := spec.Containers[0]
			if c.Image != image || c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("image %q (pull %q), want %q (the Dockerfile's) with IfNotPresent", c.Image, c.ImagePullPolicy, image)
			}
			mounts := checkVolumes(t, m, w, c)
			gpus := checkResources(t, spec, c)
			if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool { return tl.Key == "nvidia.com/gpu" }) {
				t.Error("no toleration for the nvidia.com/gpu taint of GPU nodes")
			}
			if len(c.Command) != 1 || c.Command[0] != "lrtrain" || len(c.Args) == 0 || c.Args[0] != "launch" {
				t.Fatalf("command %v %v, want lrtrain launch", c.Command, c.Args)
			}
			cfg := resolveLaunch(t, m, c.Args[1:], w.env(c), gpus)
			checkRunPaths(t, m, w, cfg, mounts)
		})
	}
}

// checkVolumes returns mount path → writable for the container's mounts.
func checkVolumes(t *testing.T, m *manifests, w workload, c corev1.Container) map[string]bool {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range w.pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounted := map[string]bool{}
	mounts := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Errorf("mount %s at %s has no volume", vm.Name, vm.MountPath)
			continue
		}
		mounted[vm.Name] = true
		mounts[vm.MountPath] = !vm.ReadOnly
		switch {
		case v.ConfigMap != nil:
			if !m.inApply(w.file, "ConfigMap/"+v.ConfigMap.Name) {
				t.Errorf("volume %s: ConfigMap %s is not defined by %v", v.Name, v.ConfigMap.Name, m.applies[w.file])
			}
		case v.PersistentVolumeClaim != nil:
			if !m.inApply(w.file, "PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName) {
				t.Errorf("volume %s: claim %s is not defined by %v", v.Name, v.PersistentVolumeClaim.ClaimName, m.applies[w.file])
			}
			if v.PersistentVolumeClaim.ReadOnly && !vm.ReadOnly {
				t.Errorf("mount %s is writable on a read-only claim", vm.MountPath)
			}
		case v.EmptyDir != nil:
		default:
			t.Errorf("volume %s: a kind the test does not check", v.Name)
		}
		if vm.MountPath == "/dev/shm" {
			if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit == nil {
				t.Errorf("/dev/shm is not a memory emptyDir with a size limit: %+v", v)
			} else if lim := c.Resources.Limits.Memory(); lim.IsZero() || v.EmptyDir.SizeLimit.Cmp(*lim) >= 0 {
				t.Errorf("/dev/shm size %v must fit in the memory limit %v", v.EmptyDir.SizeLimit, lim)
			}
		}
	}
	for name := range volumes {
		if !mounted[name] {
			t.Errorf("volume %s is never mounted", name)
		}
	}
	if _, ok := mounts["/dev/shm"]; !ok {
		t.Error("no /dev/shm mount: NCCL and the data loader get the runtime's 64 MiB")
	}
	return mounts
}

// checkResources returns the GPUs the pod asks for.
func checkResources(t *testing.T, spec corev1.PodSpec, c corev1.Container) int {
	t.Helper()
	const gpu = corev1.ResourceName("nvidia.com/gpu")
	lim, req := c.Resources.Limits[gpu], c.Resources.Requests[gpu]
	if lim.Value() < 1 || (!req.IsZero() && req.Cmp(lim) != 0) {
		t.Errorf("nvidia.com/gpu limit %v, request %v: want a positive limit (and an equal request)", lim.String(), req.String())
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q := c.Resources.Requests[r]; q.IsZero() {
			t.Errorf("no %s request", r)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.Cmp(resource.MustParse("16Gi")) < 0 {
		t.Errorf("memory limit %v: want one, of at least 16Gi", q.String())
	}
	return int(lim.Value())
}

// resolveLaunch parses the launcher's flags and PET_* environment with the
// real launch code for a node with the pod's GPUs, and checks that the
// rendezvous goes to an etcd Service of the apply set.
func resolveLaunch(t *testing.T, m *manifests, args []string, env []corev1.EnvVar, gpus int) launch.Config {
	t.Helper()
	vars := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			vars[e.Name] = podIP
		case e.ValueFrom != nil:
			t.Errorf("env %s: a source the test cannot resolve", e.Name)
		default:
			vars[e.Name] = e.Value
		}
		if !strings.HasPrefix(e.Name, "PET_") && e.Name != "PYTHONUNBUFFERED" && !strings.HasPrefix(e.Name, "NCCL_") {
			t.Errorf("env %s is neither a launcher variable (PET_*) nor NCCL's", e.Name)
		}
	}
	o := launch.DefaultOptions()
	fs := pflag.NewFlagSet("launch", pflag.ContinueOnError)
	o.AddFlags(fs)
	fs.SetInterspersed(false)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("flags %v: %v", args, err)
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	if _, err := o.ApplyEnv(fs, lookup); err != nil {
		t.Fatalf("PET_* env %v: %v", vars, err)
	}
	host := launch.Host{CPUs: 64}
	for i := range gpus {
		host.GPUs = append(host.GPUs, strconv.Itoa(i))
	}
	cfg, err := launch.Resolve(o, fs.Args(), host)
	if err != nil {
		t.Fatalf("resolve %v with env %v: %v", args, vars, err)
	}
	if cfg.Standalone || len(cfg.Endpoints) == 0 || cfg.Job != "lrtrain-qwen2" || cfg.LocalAddr != podIP ||
		cfg.Device != launch.DeviceGPU || cfg.Nproc != gpus || cfg.MinNodes < 1 || cfg.MaxNodes < cfg.MinNodes {
		t.Errorf("resolved to %s; want etcd rendezvous %q from %s, one worker per GPU (%d)", cfg.String(), "lrtrain-qwen2", podIP, gpus)
	}
	for _, ep := range cfg.Endpoints {
		h, p, err := net.SplitHostPort(ep)
		svc := m.services[h]
		if err != nil || svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return fmt.Sprint(sp.Port) == p }) {
			t.Errorf("rendezvous endpoint %q is not a port of a Service in k8s/", ep)
		}
	}
	t.Logf("%s", cfg.String())
	return cfg
}

// checkRunPaths decodes the run config the workers read and checks that every
// path it and the launcher use lies on a mount: writable for outputs.
func checkRunPaths(t *testing.T, m *manifests, w workload, cfg launch.Config, mounts map[string]bool) {
	t.Helper()
	var cfgPath string
	for _, a := range cfg.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			cfgPath = v
		}
	}
	if len(cfg.Args) == 0 || cfg.Args[0] != "train" || cfgPath == "" {
		t.Fatalf("worker arguments %v, want train --config=FILE", cfg.Args)
	}
	on := func(p string, write bool) bool {
		for mp, writable := range mounts {
			if (p == mp || strings.HasPrefix(p, mp+"/")) && (writable || !write) {
				return true
			}
		}
		return false
	}
	var src string
	for _, v := range w.pod.Spec.Volumes {
		for _, vm := range w.pod.Spec.Containers[0].VolumeMounts {
			if vm.Name == v.Name && v.ConfigMap != nil && path.Dir(cfgPath) == vm.MountPath {
				if cm := m.configMaps[v.ConfigMap.Name]; cm != nil {
					src = cm.Data[path.Base(cfgPath)]
				}
			}
		}
	}
	if src == "" {
		t.Fatalf("--config=%s is not a key of a mounted ConfigMap", cfgPath)
	}
	rc, err := config.Decode([]byte(src), w.file+":"+cfgPath, nil)
	if err != nil {
		t.Fatalf("the run config %s: %v", cfgPath, err)
	}
	reads := append([]string{rc.Model.Path}, append(rc.Data.Train, rc.Data.Eval...)...)
	for _, p := range reads {
		if !path.IsAbs(p) || !on(p, false) {
			t.Errorf("%s reads %s, which is on no mount", cfgPath, p)
		}
	}
	for _, p := range []string{rc.Output.Dir, rc.Checkpoint.Dir, rc.Export.Dir, cfg.RunDir} {
		if !path.IsAbs(p) || !on(p, true) {
			t.Errorf("lrtrain writes %s, which is on no writable mount (lost with the pod)", p)
		}
	}
}

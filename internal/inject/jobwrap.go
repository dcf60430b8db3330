package inject

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Job wrapping (sidecar.meshd.io/jobWrap: "true"): where istio-proxy is a
// regular container, a Job's pod never completes, because the proxy never
// exits. meshd copies its own binary into the pod (an init container from
// Settings.MeshdImage running `meshd job-wrap --install` into an emptyDir:
// the image needs no shell or cp) and runs the app container's command
// under `meshd job-wrap`, which waits for the proxy to be ready, runs the
// command, asks the proxy to exit and exits with the command's status.
// One app container only: each wrapped container would stop the shared
// proxy when its own command ends, cutting the others off the mesh. With
// native sidecars Kubernetes stops the proxy itself, so the annotation is
// ignored there.
const (
	JobWrapContainer = "meshd-job-wrap"
	JobWrapVolume    = "meshd-bin"
	JobWrapDir       = "/var/run/meshd/bin"
	JobWrapBinary    = JobWrapDir + "/meshd"
	// meshdInImage is where the meshd image holds the binary.
	meshdInImage = "/usr/local/bin/meshd"
)

// applyJobWrap rewrites the app containers' commands and returns the
// init container and volume to add. A container without an explicit
// command cannot be wrapped: the webhook does not know its image's
// entrypoint.
func (p *plan) applyJobWrap(cs []corev1.Container) (corev1.Container, corev1.Volume, error) {
	var bare, apps []string
	for _, c := range cs {
		if c.Name == ProxyContainer {
			continue
		}
		apps = append(apps, c.Name)
		if len(c.Command) == 0 {
			bare = append(bare, c.Name)
		}
	}
	if p.pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
		return corev1.Container{}, corev1.Volume{}, Rejection(fmt.Sprintf(
			"annotation %s: restartPolicy OnFailure cannot work with job wrapping: job-wrap stops the proxy when the "+
				"command ends, so a restarted container would wait for a proxy that never comes back; use "+
				"restartPolicy: Never (each retry gets a new pod) or native sidecars", AnnoJobWrap))
	}
	if len(apps) > 1 {
		return corev1.Container{}, corev1.Volume{}, Rejection(fmt.Sprintf(
			"annotation %s: the pod has %d app containers (%s); each wrapped container would stop the shared proxy "+
				"when its own command ends, cutting the others off the mesh: wrap one container by hand "+
				"(meshd job-wrap) or use native sidecars (sidecar.istio.io/nativeSidecar: \"true\")",
			AnnoJobWrap, len(apps), strings.Join(apps, ", ")))
	}
	if len(bare) > 0 {
		return corev1.Container{}, corev1.Volume{}, Rejection(fmt.Sprintf(
			"annotation %s: container(s) %s have no command; job wrapping runs `meshd job-wrap -- COMMAND ARGS`, "+
				"so each app container needs an explicit command (its image's ENTRYPOINT is not known to the webhook)",
			AnnoJobWrap, strings.Join(bare, ", ")))
	}
	for i := range cs {
		c := &cs[i]
		if c.Name == ProxyContainer {
			continue
		}
		c.Command = append(append([]string{JobWrapBinary, "job-wrap", "--"}, c.Command...), c.Args...)
		c.Args = nil
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: JobWrapVolume, MountPath: JobWrapDir, ReadOnly: true})
	}
	init := corev1.Container{
		Name:         JobWrapContainer,
		Image:        p.s.MeshdImage,
		Command:      []string{meshdInImage, "job-wrap", "--install", JobWrapBinary},
		VolumeMounts: []corev1.VolumeMount{{Name: JobWrapVolume, MountPath: JobWrapDir}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			ReadOnlyRootFilesystem:   ptrTo(true),
			RunAsNonRoot:             ptrTo(true),
			RunAsUser:                ptrTo[int64](ProxyUID),
			RunAsGroup:               ptrTo[int64](ProxyUID),
		},
	}
	vol := corev1.Volume{Name: JobWrapVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	return init, vol, nil
}

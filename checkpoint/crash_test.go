package checkpoint

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
)

const (
	crashRootEnv  = "CHECKPOINT_CRASH_ROOT"
	crashStageEnv = "CHECKPOINT_CRASH_STAGE"
	stageMidFile  = "mid-file"
)

func TestMain(m *testing.M) {
	childproc.Main(map[string]func() int{"crash": crashChild})
	os.Exit(m.Run())
}

// crashChild is the child process of TestSaveSurvivesSIGKILL (package childproc): it
// saves step 2 into $CHECKPOINT_CRASH_ROOT and stops at the stage
// $CHECKPOINT_CRASH_STAGE names, announcing it on stdout, until it is killed.
func crashChild() int {
	root, stage := os.Getenv(crashRootEnv), os.Getenv(crashStageEnv)
	park := func() {
		fmt.Printf("CRASHPOINT %s\n", stage)
		os.Stdout.Sync()
		time.Sleep(time.Minute) // the fault itself: parked mid-save until the parent's SIGKILL
		os.Exit(3)
	}
	hook = func(s string) error {
		if s == stage {
			park()
		}
		return nil
	}
	files := append(stepFiles(2), File{Name: "c.bin", Write: func(w io.Writer) error {
		w.Write(make([]byte, 3<<20)) // more than the buffer: some of it reaches the file
		if stage == stageMidFile {
			park()
		}
		return nil
	}})
	if _, err := Save(root, 2, files, nil); err != nil {
		fmt.Println("SAVE FAILED", err)
		return 4
	}
	fmt.Println("SAVE DONE")
	return 0
}

// A process SIGKILLed anywhere inside Save leaves a root from which the previous (or, once
// the pointer has moved, the new) checkpoint loads, and which the next Save and Prune
// clean up.
func TestSaveSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	stages := []string{stageMidFile, stageFilesWritten, stageManifestWritten, stageDirSynced,
		stageRenamed, stageLatestTempWritten, stageLatestRenamed}
	for _, stage := range stages {
		t.Run(stage, func(t *testing.T) {
			root := t.TempDir()
			mustSave(t, root, 1)
			runAndKill(t, root, stage)

			wantStep := int64(1)
			if stage == stageLatestRenamed {
				wantStep = 2 // the pointer had moved: the new checkpoint is complete and designated
			}
			requireLatest(t, root, wantStep)
			if c, _, err := LatestValid(root); err != nil || c.Step != wantStep {
				t.Fatalf("LatestValid = %v, %v; want step %d", c, err, wantStep)
			}
			if wantStep == 2 {
				return
			}
			// The crashed save's leftovers: a temp dir, maybe an uncommitted step-000002 and
			// latest.tmp. Saving step 2 again replaces them; Prune removes what is stale.
			mustSave(t, root, 2)
			requireLatest(t, root, 2)
			ageEntries(t, root, time.Hour)
			if _, err := Prune(root, 2); err != nil {
				t.Fatal(err)
			}
			if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000001", "step-000002"}) {
				t.Errorf("after resave and prune the root holds %v", got)
			}
		})
	}
}

// runAndKill starts the child, waits until it reports reaching stage, and SIGKILLs it.
func runAndKill(t *testing.T, root, stage string) {
	t.Helper()
	cmd := childproc.Command(context.Background(), "crash", crashRootEnv+"="+root, crashStageEnv+"="+stage)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var seen []string
		for sc.Scan() {
			if sc.Text() == "CRASHPOINT "+stage {
				reached <- ""
				io.Copy(io.Discard, stdout)
				return
			}
			seen = append(seen, sc.Text())
		}
		reached <- strings.Join(seen, "\n")
	}()
	select {
	case out := <-reached:
		if out != "" {
			cmd.Wait()
			t.Fatalf("child exited without reaching %s:\n%s", stage, out)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("child did not reach %s in 30s", stage)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	cmd.Wait()
}

// ageEntries backdates everything directly under root (and one level down), as if the
// crash had happened long ago.
func ageEntries(t *testing.T, root string, by time.Duration) {
	t.Helper()
	old := time.Now().Add(-by)
	for _, name := range testkit.DirNames(t, root) {
		p := root + "/" + name
		if entries, err := os.ReadDir(p); err == nil {
			for _, e := range entries {
				os.Chtimes(p+"/"+e.Name(), old, old)
			}
		}
		os.Chtimes(p, old, old)
	}
}

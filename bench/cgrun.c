/* cgrun: runs a command in a cgroup of its own, doing the cgroup work `brig run` does per run,
 * so that bench/startup_paired.py can time bwrap with it ("bwrap+cgroup"): make the group
 * (v1: memory, pids, cpu and cpuacct directories, as on the development VM; v2: one directory),
 * write a memory limit with swap off and a pids limit, start the command in it, wait, read the
 * CPU time and peak memory, remove the group, exit with the command's status.
 *
 *     cgrun COMMAND [ARGS...]          (root; built by the bench scripts with `cc -O2`)
 *
 * With CGRUN_NONE set, or built with -DCGRUN_NONE, it only forks, execs and waits: the
 * wrapper's own cost, to subtract.
 *
 * A benchmark helper, not part of Brig. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PARENT "brig-bench"
static char dirs[4][256];
static int ndirs;

static void put(const char *dir, const char *file, const char *value, int must) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, value, strlen(value)) < 0) {
    if (must) { perror(path); exit(125); }
  }
  if (fd >= 0) close(fd);
}

static long long get(const char *dir, const char *file) {
  char path[512], buf[64] = {0};
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? atoll(buf) : -1;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: cgrun COMMAND [ARGS...]\n"); return 125; }
  int none = getenv("CGRUN_NONE") != NULL;
#ifdef CGRUN_NONE
  none = 1;
#endif
  if (none) {
    pid_t pid = fork();
    if (pid == 0) { execvp(argv[1], argv + 1); _exit(127); }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  int v2 = access("/sys/fs/cgroup/cgroup.subtree_control", F_OK) == 0 &&
           access("/sys/fs/cgroup/memory", F_OK) != 0;
  const char *v1[] = {"memory", "pids", "cpu", "cpuacct"};
  char name[64];
  snprintf(name, sizeof name, "run-%d", getpid());
  if (v2) {
    mkdir("/sys/fs/cgroup/" PARENT, 0755);
    put("/sys/fs/cgroup/" PARENT, "cgroup.subtree_control", "+memory +pids +cpu", 0);
    snprintf(dirs[ndirs++], 256, "/sys/fs/cgroup/" PARENT "/%s", name);
  } else {
    for (int i = 0; i < 4; i++) {
      char parent[192];
      snprintf(parent, sizeof parent, "/sys/fs/cgroup/%s/" PARENT, v1[i]);
      mkdir(parent, 0755);
      snprintf(dirs[ndirs++], 256, "%s/%s", parent, name);
    }
  }
  for (int i = 0; i < ndirs; i++)
    if (mkdir(dirs[i], 0755) != 0 && errno != EEXIST) { perror(dirs[i]); return 125; }
  if (v2) {
    put(dirs[0], "memory.max", "268435456", 1);
    put(dirs[0], "memory.swap.max", "0", 0);
    put(dirs[0], "pids.max", "64", 1);
  } else {
    put(dirs[0], "memory.limit_in_bytes", "268435456", 1);
    put(dirs[0], "memory.memsw.limit_in_bytes", "268435456", 0);
    put(dirs[0], "memory.swappiness", "0", 0);
    put(dirs[1], "pids.max", "64", 1);
  }
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < ndirs; i++) put(dirs[i], v2 ? "cgroup.procs" : "tasks", "0", 1);
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  /* What brig reads after a run: CPU time, peak memory, the OOM-kill counter. */
  long long cpu = get(dirs[v2 ? 0 : 3], v2 ? "cpu.stat" : "cpuacct.usage");
  long long peak = get(dirs[0], v2 ? "memory.peak" : "memory.max_usage_in_bytes");
  long long oom = get(dirs[0], v2 ? "memory.events" : "memory.oom_control");
  (void)cpu, (void)peak, (void)oom;
  for (int i = 0; i < ndirs; i++) rmdir(dirs[i]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

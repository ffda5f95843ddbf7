/* --by-exe ground truth: runs each argument as a program, one after the
 * other (fork, execv, waitpid), from a thread so that the calls of the
 * launcher's threads are attributed to the launcher too. Exits 0 when
 * every program exited 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int argc_;
static char **argv_;
static int failed;

static void *run_all(void *unused) {
    (void)unused;
    for (int i = 1; i < argc_; i++) {
        pid_t child = fork();
        if (child == 0) {
            char *args[] = {argv_[i], NULL};
            execv(argv_[i], args);
            _exit(127);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed = 1;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    argc_ = argc;
    argv_ = argv;
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_all, NULL) != 0 || pthread_join(thread, NULL) != 0) {
        return 2;
    }
    return failed;
}

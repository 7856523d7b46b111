package flinkops.testjobs;

/** A program whose main() fails before it builds a job: submission itself must fail. */
public final class ThrowingMain {
    private ThrowingMain() {}

    public static void main(String[] args) {
        throw new IllegalArgumentException("flinkops-test: main() refused to build the job");
    }
}

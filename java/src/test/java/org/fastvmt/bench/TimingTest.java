package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

class TimingTest {

    @Test
    void theMedianIgnoresOneSlowRun() {
        assertEquals(2.0, new Timing(9, new double[] {3, 1, 2}).medianMs());
        assertEquals(2.5, new Timing(9, new double[] {100, 1, 2, 3}).medianMs());
        assertEquals(7.0, new Timing(9, new double[] {7}).medianMs());
    }

    /** The set-up runs before every run, the warm-up is reported first and kept out of the repetitions. */
    @Test
    void measureWarmsUpThenRepeats() {
        List<String> events = new ArrayList<>();
        List<Double> reported = new ArrayList<>();
        int[] runs = {0};
        Timing timing = Timing.measure(() -> events.add("setUp"), () -> {
            events.add("run");
            runs[0]++;
            sleepMs(runs[0] == 1 ? 30 : 2);
        }, 3, reported::add);
        assertEquals(List.of("setUp", "run", "setUp", "run", "setUp", "run", "setUp", "run"), events);
        assertEquals(4, reported.size());
        assertEquals(timing.warmUpMs(), reported.get(0));
        assertEquals(3, timing.repetitionsMs().length);
        assertTrue(timing.warmUpMs() >= 30, "the first run (a sleep of 30 ms) is the warm-up: " + timing);
        for (int r = 0; r < 3; r++) {
            assertEquals(timing.repetitionsMs()[r], reported.get(r + 1));
            assertTrue(timing.repetitionsMs()[r] >= 2, "a sleep of 2 ms: " + timing);
        }
    }

    @Test
    void atLeastOneRepetition() {
        assertThrows(IllegalArgumentException.class, () -> Timing.measure(() -> { }, () -> { }, 0, ms -> { }));
        assertThrows(IllegalArgumentException.class, () -> new Timing(1, new double[0]));
    }

    private static void sleepMs(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}

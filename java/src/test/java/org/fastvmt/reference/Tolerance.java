package org.fastvmt.reference;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * llm.c's rule: |got − ref| ≤ atol + rtol·|ref| per element. A failure lists the worst
 * elements, so a kernel bug shows where it is.
 */
public record Tolerance(double atol, double rtol) {

    private static final int SHOWN = 8;

    public boolean accepts(double expected, double actual) {
        return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
    }

    public void assertClose(String what, double expected, double actual) {
        if (!accepts(expected, actual)) {
            fail(what + ": expected " + expected + ", got " + actual + " (atol " + atol + ", rtol " + rtol + ")");
        }
    }

    public void assertClose(String what, double[] expected, float[] actual) {
        double[] widened = new double[actual.length];
        for (int n = 0; n < actual.length; n++) {
            widened[n] = actual[n];
        }
        assertClose(what, expected, widened);
    }

    public void assertClose(String what, double[] expected, double[] actual) {
        if (expected.length != actual.length) {
            fail(what + ": expected " + expected.length + " elements, got " + actual.length);
        }
        int bad = 0;
        StringBuilder shown = new StringBuilder();
        for (int n = 0; n < expected.length; n++) {
            if (!accepts(expected[n], actual[n])) {
                if (bad < SHOWN) {
                    shown.append(String.format("%n  [%d] expected %.9g, got %.9g (|diff| %.3g)", n, expected[n],
                            actual[n], Math.abs(actual[n] - expected[n])));
                }
                bad++;
            }
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + expected.length + " elements outside atol " + atol + " + rtol "
                    + rtol + "·|ref|:" + shown);
        }
    }
}

package org.fastvmt.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BiPredicate;

import org.fastvmt.backend.Backend;
import org.fastvmt.tensor.DType;
import org.fastvmt.tensor.Tensor;

/**
 * Checks a model's parameters against what its config expects and reports every problem in one
 * {@link IllegalArgumentException}, so a bad checkpoint is fixed in one round, not one tensor at a
 * time.
 */
public final class ParameterCheck {

    private ParameterCheck() {
    }

    /**
     * Checks {@code tensors} against {@code expected} (key to shape): every key present, none
     * extra, each of the expected shape, F32 (or BF16 where {@code mayBeBf16} accepts the key and
     * shape), all on one backend. Throws one exception starting with {@code heading} that lists
     * the missing, unexpected and wrong tensors.
     */
    public static void requireFit(String heading, Map<String, long[]> expected, Map<String, Tensor> tensors,
            BiPredicate<String, long[]> mayBeBf16) {
        List<String> missing = new ArrayList<>();
        List<String> unexpected = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        for (Map.Entry<String, long[]> entry : expected.entrySet()) {
            String key = entry.getKey();
            Tensor tensor = tensors.get(key);
            if (tensor == null) {
                missing.add(key);
            } else if (!Arrays.equals(tensor.shape(), entry.getValue())) {
                wrong.add(key + " has shape " + Arrays.toString(tensor.shape()) + ", expected "
                        + Arrays.toString(entry.getValue()));
            } else {
                boolean matrix = mayBeBf16.test(key, tensor.shape());
                if (tensor.dtype() != DType.F32 && !(tensor.dtype() == DType.BF16 && matrix)) {
                    wrong.add(key + " is " + tensor.dtype() + ", expected " + (matrix ? "F32 or BF16" : "F32"));
                }
            }
        }
        Backend backend = null;
        for (Map.Entry<String, Tensor> entry : tensors.entrySet()) {
            if (!expected.containsKey(entry.getKey())) {
                unexpected.add(entry.getKey());
            } else if (backend == null) {
                backend = entry.getValue().backend();
            } else if (entry.getValue().backend() != backend) {
                wrong.add(entry.getKey() + " is on backend " + entry.getValue().backend().name()
                        + ", the others on " + backend.name());
            }
        }
        requireNone(heading, missing, unexpected, "wrong", wrong);
    }

    /**
     * Throws one exception, {@code heading} then a section per non-empty list ("missing (2): a, b"),
     * when any list has an entry; returns quietly otherwise.
     */
    public static void requireNone(String heading, List<String> missing, List<String> unexpected, String wrongTitle,
            List<String> wrong) {
        if (!missing.isEmpty() || !unexpected.isEmpty() || !wrong.isEmpty()) {
            StringBuilder message = new StringBuilder(heading);
            section(message, "missing", missing);
            section(message, "unexpected", unexpected);
            section(message, wrongTitle, wrong);
            throw new IllegalArgumentException(message.toString());
        }
    }

    private static void section(StringBuilder message, String title, List<String> items) {
        if (!items.isEmpty()) {
            message.append("\n  ").append(title).append(" (").append(items.size()).append("): ")
                    .append(String.join(", ", items));
        }
    }
}

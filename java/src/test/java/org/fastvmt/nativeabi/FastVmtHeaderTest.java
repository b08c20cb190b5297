package org.fastvmt.nativeabi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Parses native/include/fastvmt.h and checks the hand-written bindings against it: every
 * prototype has a descriptor and a method of the same signature, nothing extra is bound, and
 * the #define constants agree.
 */
class FastVmtHeaderTest {

    private static final Pattern PROTOTYPE = Pattern.compile(
            "FVMT_API\\s+(?<ret>[\\w\\s\\*]+?)\\s*(?<name>fvmt_\\w+)\\s*\\((?<params>[^)]*)\\)\\s*;");
    private static final Pattern DEFINE = Pattern.compile("#define\\s+(FVMT_\\w+)\\s+(-?\\d+)\\b");

    private static String header;
    private static Map<String, FunctionDescriptor> prototypes;

    @BeforeAll
    static void parseHeader() throws IOException {
        String configured = System.getProperty("fastvmt.native.header");
        Path path = configured != null ? Path.of(configured) : Path.of("../native/include/fastvmt.h");
        header = stripComments(Files.readString(path));
        prototypes = new LinkedHashMap<>();
        Matcher matcher = PROTOTYPE.matcher(header);
        while (matcher.find()) {
            List<MemoryLayout> arguments = new ArrayList<>();
            String params = matcher.group("params").strip();
            if (!params.equals("void")) {
                for (String param : params.split(",")) {
                    arguments.add(layoutOf(parameterType(param)));
                }
            }
            Optional<MemoryLayout> result = returnLayout(matcher.group("ret"));
            FunctionDescriptor descriptor = result.isPresent()
                    ? FunctionDescriptor.of(result.get(), arguments.toArray(MemoryLayout[]::new))
                    : FunctionDescriptor.ofVoid(arguments.toArray(MemoryLayout[]::new));
            prototypes.put(matcher.group("name"), descriptor);
        }
    }

    @Test
    void headerDeclaresFunctions() {
        assertTrue(prototypes.size() >= 46, "parsed only " + prototypes.keySet());
        // The last function of the header: the parser reached the end of the DiT ops section.
        assertTrue(prototypes.containsKey("fvmt_attention_backward"), "parsed only " + prototypes.keySet());
    }

    @Test
    void everyPrototypeHasTheSameDescriptor() {
        for (Map.Entry<String, FunctionDescriptor> prototype : prototypes.entrySet()) {
            FunctionDescriptor bound = FastVmtH.FUNCTIONS.get(prototype.getKey());
            if (bound == null) {
                fail(prototype.getKey() + " is declared in fastvmt.h but has no binding in FastVmtH");
            }
            assertEquals(prototype.getValue(), bound, "descriptor of " + prototype.getKey());
        }
    }

    @Test
    void nothingIsBoundThatTheHeaderLacks() {
        for (String name : FastVmtH.FUNCTIONS.keySet()) {
            assertTrue(prototypes.containsKey(name), name + " is bound but not declared in fastvmt.h");
        }
    }

    @Test
    void everyFunctionHasAMethodWithTheCSignature() {
        for (Map.Entry<String, FunctionDescriptor> prototype : prototypes.entrySet()) {
            FunctionDescriptor descriptor = prototype.getValue();
            Class<?>[] parameters = descriptor.argumentLayouts().stream()
                    .map(FastVmtHeaderTest::carrier).toArray(Class<?>[]::new);
            Method method;
            try {
                method = FastVmtH.class.getMethod(prototype.getKey(), parameters);
            } catch (NoSuchMethodException e) {
                throw new AssertionError("FastVmtH has no method " + prototype.getKey() + " taking "
                        + List.of(parameters), e);
            }
            Class<?> expectedReturn = descriptor.returnLayout().map(FastVmtHeaderTest::carrier).orElse(void.class);
            assertEquals(expectedReturn, method.getReturnType(), "return type of " + prototype.getKey());
            assertFalse(Modifier.isStatic(method.getModifiers()), prototype.getKey() + " binds one library");
        }
    }

    @Test
    void constantsAgreeWithTheDefines() throws IllegalAccessException {
        Matcher matcher = DEFINE.matcher(header);
        int checked = 0;
        while (matcher.find()) {
            String name = matcher.group(1);
            Field field;
            try {
                field = FastVmtH.class.getField(name);
            } catch (NoSuchFieldException e) {
                throw new AssertionError("#define " + name + " has no constant in FastVmtH", e);
            }
            assertEquals(Integer.parseInt(matcher.group(2)), field.getInt(null), name);
            checked++;
        }
        assertTrue(checked >= 10, "parsed only " + checked + " #defines");
    }

    /** Self-check of the parser on the ways the header writes parameters. */
    @Test
    void parserMapsCTypes() {
        assertEquals(ValueLayout.ADDRESS, layoutOf(parameterType("const int32_t *pairs")));
        assertEquals(ValueLayout.ADDRESS, layoutOf(parameterType("void *stream")));
        assertEquals(ValueLayout.ADDRESS, layoutOf(parameterType("const uint16_t *src")));
        assertEquals(ValueLayout.JAVA_INT, layoutOf(parameterType("int32_t pair_count")));
        assertEquals(ValueLayout.JAVA_LONG, layoutOf(parameterType("size_t workspace_bytes")));
        assertEquals(ValueLayout.JAVA_LONG, layoutOf(parameterType("int64_t n")));
        assertEquals(ValueLayout.JAVA_FLOAT, layoutOf(parameterType("float temperature")));
        assertEquals(Optional.of(ValueLayout.ADDRESS), returnLayout("const char *"));
        assertEquals(Optional.empty(), returnLayout("void"));
    }

    private static String stripComments(String text) {
        return text.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\\n]*", " ");
    }

    /** "const float *d_delta" → "const float *"; "int32_t frames" → "int32_t". */
    private static String parameterType(String parameter) {
        String p = parameter.strip().replaceAll("\\s+", " ");
        return p.substring(0, p.length() - p.replaceAll("^.*?([\\w]+)$", "$1").length()).strip();
    }

    private static Optional<MemoryLayout> returnLayout(String type) {
        String t = type.strip().replaceAll("\\s+", " ");
        return t.equals("void") ? Optional.empty() : Optional.of(layoutOf(t));
    }

    private static MemoryLayout layoutOf(String cType) {
        if (cType.contains("*")) {
            return ValueLayout.ADDRESS;
        }
        return switch (cType.replace("const ", "").strip()) {
            case "int32_t" -> ValueLayout.JAVA_INT;
            case "int64_t", "size_t" -> ValueLayout.JAVA_LONG;
            case "float" -> ValueLayout.JAVA_FLOAT;
            case "double" -> ValueLayout.JAVA_DOUBLE;
            default -> throw new AssertionError("fastvmt.h uses a C type the bindings do not map: " + cType);
        };
    }

    private static Class<?> carrier(MemoryLayout layout) {
        if (layout.equals(ValueLayout.ADDRESS)) {
            return MemorySegment.class;
        }
        return ((ValueLayout) layout).carrier();
    }
}

package org.fastvmt.nativeabi;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hand-written FFM bindings of {@code native/include/fastvmt.h}, in jextract's style: one
 * {@link FunctionDescriptor} per C function, under the C name, and one method per function with
 * the C name and the C parameter order. Unlike jextract's static class, an instance binds one
 * library, because the cpu, cuda and cudaemu builds export the same symbols.
 *
 * <p>{@code FastVmtHeaderTest} parses the header and fails when a prototype has no descriptor
 * here, or a different one. C types map as: int32_t → JAVA_INT, int64_t and size_t →
 * JAVA_LONG, float → JAVA_FLOAT, any pointer → ADDRESS.
 *
 * <p>Pointers are the build's memory space: host segments for cpu and cudaemu, device
 * addresses wrapped by {@link MemorySegment#ofAddress(long)} for cuda.
 */
public final class FastVmtH {

    public static final int FVMT_ABI_VERSION = 3;

    public static final int FVMT_OK = 0;
    public static final int FVMT_ERR_INVALID_ARGUMENT = 1;
    public static final int FVMT_ERR_UNSUPPORTED = 2;
    public static final int FVMT_ERR_OUT_OF_MEMORY = 3;
    public static final int FVMT_ERR_WORKSPACE_TOO_SMALL = 4;
    public static final int FVMT_ERR_DEVICE = 5;
    public static final int FVMT_ERR_INTERNAL = 6;

    public static final int FVMT_DTYPE_F32 = 0;
    public static final int FVMT_DTYPE_BF16 = 1;

    public static final int FVMT_PATCH_CHANNEL_FIRST = 0;
    public static final int FVMT_PATCH_CHANNEL_LAST = 1;

    private static final FunctionDescriptor fvmt_abi_version$DESC = FunctionDescriptor.of(JAVA_INT);
    private static final FunctionDescriptor fvmt_build_name$DESC = FunctionDescriptor.of(ADDRESS);
    private static final FunctionDescriptor fvmt_status_message$DESC =
            FunctionDescriptor.of(ADDRESS, JAVA_INT);
    private static final FunctionDescriptor fvmt_last_error$DESC = FunctionDescriptor.of(ADDRESS);
    private static final FunctionDescriptor fvmt_supports_dtype$DESC =
            FunctionDescriptor.of(JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor fvmt_runtime_check$DESC = FunctionDescriptor.of(JAVA_INT);
    private static final FunctionDescriptor fvmt_count_nonfinite$DESC =
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);

    private static final FunctionDescriptor fvmt_amf_full_workspace_bytes$DESC =
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor fvmt_amf_full_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
            ADDRESS, JAVA_INT,
            ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_amf_full_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
            ADDRESS, JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);

    private static final FunctionDescriptor fvmt_amf_window_workspace_bytes$DESC = FunctionDescriptor.of(
            JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor fvmt_amf_window_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
            JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS, JAVA_INT,
            ADDRESS, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_amf_window_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT,
            JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS, JAVA_INT,
            ADDRESS,
            ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);

    private static final FunctionDescriptor fvmt_window_loss_workspace_bytes$DESC =
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor fvmt_window_loss_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_window_loss_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS);

    private static final FunctionDescriptor fvmt_tracking_loss_workspace_bytes$DESC = FunctionDescriptor.of(
            JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor fvmt_tracking_loss_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT,
            ADDRESS, JAVA_INT,
            ADDRESS, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_tracking_loss_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT,
            ADDRESS, JAVA_INT,
            ADDRESS, JAVA_FLOAT,
            ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);

    private static final FunctionDescriptor fvmt_adamw_step$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
            JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, ADDRESS);

    // DiT ops (ABI version 2).
    private static final FunctionDescriptor fvmt_column_reduction_workspace_bytes$DESC = FunctionDescriptor.of(
            JAVA_LONG, JAVA_LONG, JAVA_INT);
    private static final FunctionDescriptor fvmt_bf16_to_f32$DESC = FunctionDescriptor.of(JAVA_INT, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_add_scaled$DESC = FunctionDescriptor.of(JAVA_INT, ADDRESS,
            JAVA_FLOAT, ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_bias_add_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_bias_add_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_layer_norm_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_layer_norm_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
            JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_rms_norm_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_rms_norm_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS, ADDRESS,
            JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_modulate_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_modulate_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
            ADDRESS);
    private static final FunctionDescriptor fvmt_gated_residual_forward$DESC = FunctionDescriptor.of(
            JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_gated_residual_backward$DESC = FunctionDescriptor.of(
            JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
            JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_gelu_tanh_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_LONG, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_gelu_tanh_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_silu_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_LONG, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_silu_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_rope3d_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_rope3d_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_timestep_embedding_forward$DESC = FunctionDescriptor.of(
            JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_timestep_embedding_backward$DESC = FunctionDescriptor.of(
            JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_patchify$DESC = FunctionDescriptor.of(JAVA_INT, ADDRESS,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_unpatchify$DESC = FunctionDescriptor.of(JAVA_INT, ADDRESS,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_attention_workspace_bytes$DESC = FunctionDescriptor.of(
            JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor fvmt_attention_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_attention_backward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_FLOAT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);

    // Text encoder ops (ABI version 3).
    private static final FunctionDescriptor fvmt_mul_forward$DESC = FunctionDescriptor.of(JAVA_INT, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_embedding_workspace_bytes$DESC = FunctionDescriptor.of(JAVA_LONG);
    private static final FunctionDescriptor fvmt_embedding_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor fvmt_relative_attention_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS,
            ADDRESS);

    // Video autoencoder ops.
    private static final FunctionDescriptor fvmt_im2col3d$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_upsample_nearest2x$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_frame_interleave$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor fvmt_softmax_rows_forward$DESC = FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_LONG, JAVA_INT, JAVA_FLOAT, ADDRESS, ADDRESS);

    /** Every bound function, in header order: the C name and its descriptor. */
    public static final Map<String, FunctionDescriptor> FUNCTIONS;

    static {
        Map<String, FunctionDescriptor> functions = new LinkedHashMap<>();
        functions.put("fvmt_abi_version", fvmt_abi_version$DESC);
        functions.put("fvmt_build_name", fvmt_build_name$DESC);
        functions.put("fvmt_status_message", fvmt_status_message$DESC);
        functions.put("fvmt_last_error", fvmt_last_error$DESC);
        functions.put("fvmt_supports_dtype", fvmt_supports_dtype$DESC);
        functions.put("fvmt_runtime_check", fvmt_runtime_check$DESC);
        functions.put("fvmt_count_nonfinite", fvmt_count_nonfinite$DESC);
        functions.put("fvmt_amf_full_workspace_bytes", fvmt_amf_full_workspace_bytes$DESC);
        functions.put("fvmt_amf_full_forward", fvmt_amf_full_forward$DESC);
        functions.put("fvmt_amf_full_backward", fvmt_amf_full_backward$DESC);
        functions.put("fvmt_amf_window_workspace_bytes", fvmt_amf_window_workspace_bytes$DESC);
        functions.put("fvmt_amf_window_forward", fvmt_amf_window_forward$DESC);
        functions.put("fvmt_amf_window_backward", fvmt_amf_window_backward$DESC);
        functions.put("fvmt_window_loss_workspace_bytes", fvmt_window_loss_workspace_bytes$DESC);
        functions.put("fvmt_window_loss_forward", fvmt_window_loss_forward$DESC);
        functions.put("fvmt_window_loss_backward", fvmt_window_loss_backward$DESC);
        functions.put("fvmt_tracking_loss_workspace_bytes", fvmt_tracking_loss_workspace_bytes$DESC);
        functions.put("fvmt_tracking_loss_forward", fvmt_tracking_loss_forward$DESC);
        functions.put("fvmt_tracking_loss_backward", fvmt_tracking_loss_backward$DESC);
        functions.put("fvmt_adamw_step", fvmt_adamw_step$DESC);
        functions.put("fvmt_column_reduction_workspace_bytes", fvmt_column_reduction_workspace_bytes$DESC);
        functions.put("fvmt_bf16_to_f32", fvmt_bf16_to_f32$DESC);
        functions.put("fvmt_add_scaled", fvmt_add_scaled$DESC);
        functions.put("fvmt_bias_add_forward", fvmt_bias_add_forward$DESC);
        functions.put("fvmt_bias_add_backward", fvmt_bias_add_backward$DESC);
        functions.put("fvmt_layer_norm_forward", fvmt_layer_norm_forward$DESC);
        functions.put("fvmt_layer_norm_backward", fvmt_layer_norm_backward$DESC);
        functions.put("fvmt_rms_norm_forward", fvmt_rms_norm_forward$DESC);
        functions.put("fvmt_rms_norm_backward", fvmt_rms_norm_backward$DESC);
        functions.put("fvmt_modulate_forward", fvmt_modulate_forward$DESC);
        functions.put("fvmt_modulate_backward", fvmt_modulate_backward$DESC);
        functions.put("fvmt_gated_residual_forward", fvmt_gated_residual_forward$DESC);
        functions.put("fvmt_gated_residual_backward", fvmt_gated_residual_backward$DESC);
        functions.put("fvmt_gelu_tanh_forward", fvmt_gelu_tanh_forward$DESC);
        functions.put("fvmt_gelu_tanh_backward", fvmt_gelu_tanh_backward$DESC);
        functions.put("fvmt_silu_forward", fvmt_silu_forward$DESC);
        functions.put("fvmt_silu_backward", fvmt_silu_backward$DESC);
        functions.put("fvmt_rope3d_forward", fvmt_rope3d_forward$DESC);
        functions.put("fvmt_rope3d_backward", fvmt_rope3d_backward$DESC);
        functions.put("fvmt_timestep_embedding_forward", fvmt_timestep_embedding_forward$DESC);
        functions.put("fvmt_timestep_embedding_backward", fvmt_timestep_embedding_backward$DESC);
        functions.put("fvmt_patchify", fvmt_patchify$DESC);
        functions.put("fvmt_unpatchify", fvmt_unpatchify$DESC);
        functions.put("fvmt_attention_workspace_bytes", fvmt_attention_workspace_bytes$DESC);
        functions.put("fvmt_attention_forward", fvmt_attention_forward$DESC);
        functions.put("fvmt_attention_backward", fvmt_attention_backward$DESC);
        functions.put("fvmt_mul_forward", fvmt_mul_forward$DESC);
        functions.put("fvmt_embedding_workspace_bytes", fvmt_embedding_workspace_bytes$DESC);
        functions.put("fvmt_embedding_forward", fvmt_embedding_forward$DESC);
        functions.put("fvmt_relative_attention_forward", fvmt_relative_attention_forward$DESC);
        functions.put("fvmt_im2col3d", fvmt_im2col3d$DESC);
        functions.put("fvmt_upsample_nearest2x", fvmt_upsample_nearest2x$DESC);
        functions.put("fvmt_frame_interleave", fvmt_frame_interleave$DESC);
        functions.put("fvmt_softmax_rows_forward", fvmt_softmax_rows_forward$DESC);
        FUNCTIONS = Collections.unmodifiableMap(functions);
    }

    private final String libraryName;
    private final MethodHandle abiVersion;
    private final MethodHandle buildName;
    private final MethodHandle statusMessage;
    private final MethodHandle lastError;
    private final MethodHandle supportsDtype;
    private final MethodHandle runtimeCheck;
    private final MethodHandle countNonfinite;
    private final MethodHandle amfFullWorkspaceBytes;
    private final MethodHandle amfFullForward;
    private final MethodHandle amfFullBackward;
    private final MethodHandle amfWindowWorkspaceBytes;
    private final MethodHandle amfWindowForward;
    private final MethodHandle amfWindowBackward;
    private final MethodHandle windowLossWorkspaceBytes;
    private final MethodHandle windowLossForward;
    private final MethodHandle windowLossBackward;
    private final MethodHandle trackingLossWorkspaceBytes;
    private final MethodHandle trackingLossForward;
    private final MethodHandle trackingLossBackward;
    private final MethodHandle adamwStep;
    private final MethodHandle columnReductionWorkspaceBytes;
    private final MethodHandle bf16ToF32;
    private final MethodHandle addScaled;
    private final MethodHandle biasAddForward;
    private final MethodHandle biasAddBackward;
    private final MethodHandle layerNormForward;
    private final MethodHandle layerNormBackward;
    private final MethodHandle rmsNormForward;
    private final MethodHandle rmsNormBackward;
    private final MethodHandle modulateForward;
    private final MethodHandle modulateBackward;
    private final MethodHandle gatedResidualForward;
    private final MethodHandle gatedResidualBackward;
    private final MethodHandle geluTanhForward;
    private final MethodHandle geluTanhBackward;
    private final MethodHandle siluForward;
    private final MethodHandle siluBackward;
    private final MethodHandle rope3dForward;
    private final MethodHandle rope3dBackward;
    private final MethodHandle timestepEmbeddingForward;
    private final MethodHandle timestepEmbeddingBackward;
    private final MethodHandle patchify;
    private final MethodHandle unpatchify;
    private final MethodHandle attentionWorkspaceBytes;
    private final MethodHandle attentionForward;
    private final MethodHandle attentionBackward;
    private final MethodHandle mulForward;
    private final MethodHandle embeddingWorkspaceBytes;
    private final MethodHandle embeddingForward;
    private final MethodHandle relativeAttentionForward;
    private final MethodHandle im2col3d;
    private final MethodHandle upsampleNearest2x;
    private final MethodHandle frameInterleave;
    private final MethodHandle softmaxRowsForward;

    private FastVmtH(String libraryName, SymbolLookup lookup) {
        this.libraryName = libraryName;
        Linker linker = Linker.nativeLinker();
        Map<String, MethodHandle> handles = new LinkedHashMap<>();
        for (Map.Entry<String, FunctionDescriptor> function : FUNCTIONS.entrySet()) {
            MemorySegment symbol = lookup.find(function.getKey()).orElseThrow(() -> new NativeLibraryException(
                    libraryName + " does not export " + function.getKey()
                            + "; it was built from another version of fastvmt.h"));
            handles.put(function.getKey(), linker.downcallHandle(symbol, function.getValue()));
        }
        abiVersion = handles.get("fvmt_abi_version");
        buildName = handles.get("fvmt_build_name");
        statusMessage = handles.get("fvmt_status_message");
        lastError = handles.get("fvmt_last_error");
        supportsDtype = handles.get("fvmt_supports_dtype");
        runtimeCheck = handles.get("fvmt_runtime_check");
        countNonfinite = handles.get("fvmt_count_nonfinite");
        amfFullWorkspaceBytes = handles.get("fvmt_amf_full_workspace_bytes");
        amfFullForward = handles.get("fvmt_amf_full_forward");
        amfFullBackward = handles.get("fvmt_amf_full_backward");
        amfWindowWorkspaceBytes = handles.get("fvmt_amf_window_workspace_bytes");
        amfWindowForward = handles.get("fvmt_amf_window_forward");
        amfWindowBackward = handles.get("fvmt_amf_window_backward");
        windowLossWorkspaceBytes = handles.get("fvmt_window_loss_workspace_bytes");
        windowLossForward = handles.get("fvmt_window_loss_forward");
        windowLossBackward = handles.get("fvmt_window_loss_backward");
        trackingLossWorkspaceBytes = handles.get("fvmt_tracking_loss_workspace_bytes");
        trackingLossForward = handles.get("fvmt_tracking_loss_forward");
        trackingLossBackward = handles.get("fvmt_tracking_loss_backward");
        adamwStep = handles.get("fvmt_adamw_step");
        columnReductionWorkspaceBytes = handles.get("fvmt_column_reduction_workspace_bytes");
        bf16ToF32 = handles.get("fvmt_bf16_to_f32");
        addScaled = handles.get("fvmt_add_scaled");
        biasAddForward = handles.get("fvmt_bias_add_forward");
        biasAddBackward = handles.get("fvmt_bias_add_backward");
        layerNormForward = handles.get("fvmt_layer_norm_forward");
        layerNormBackward = handles.get("fvmt_layer_norm_backward");
        rmsNormForward = handles.get("fvmt_rms_norm_forward");
        rmsNormBackward = handles.get("fvmt_rms_norm_backward");
        modulateForward = handles.get("fvmt_modulate_forward");
        modulateBackward = handles.get("fvmt_modulate_backward");
        gatedResidualForward = handles.get("fvmt_gated_residual_forward");
        gatedResidualBackward = handles.get("fvmt_gated_residual_backward");
        geluTanhForward = handles.get("fvmt_gelu_tanh_forward");
        geluTanhBackward = handles.get("fvmt_gelu_tanh_backward");
        siluForward = handles.get("fvmt_silu_forward");
        siluBackward = handles.get("fvmt_silu_backward");
        rope3dForward = handles.get("fvmt_rope3d_forward");
        rope3dBackward = handles.get("fvmt_rope3d_backward");
        timestepEmbeddingForward = handles.get("fvmt_timestep_embedding_forward");
        timestepEmbeddingBackward = handles.get("fvmt_timestep_embedding_backward");
        patchify = handles.get("fvmt_patchify");
        unpatchify = handles.get("fvmt_unpatchify");
        attentionWorkspaceBytes = handles.get("fvmt_attention_workspace_bytes");
        attentionForward = handles.get("fvmt_attention_forward");
        attentionBackward = handles.get("fvmt_attention_backward");
        mulForward = handles.get("fvmt_mul_forward");
        embeddingWorkspaceBytes = handles.get("fvmt_embedding_workspace_bytes");
        embeddingForward = handles.get("fvmt_embedding_forward");
        relativeAttentionForward = handles.get("fvmt_relative_attention_forward");
        im2col3d = handles.get("fvmt_im2col3d");
        upsampleNearest2x = handles.get("fvmt_upsample_nearest2x");
        frameInterleave = handles.get("fvmt_frame_interleave");
        softmaxRowsForward = handles.get("fvmt_softmax_rows_forward");
    }

    /**
     * Binds every function of the header in {@code lookup}.
     *
     * @throws NativeLibraryException if a symbol is missing or the ABI version differs
     */
    public static FastVmtH bind(String libraryName, SymbolLookup lookup) {
        FastVmtH bindings = new FastVmtH(libraryName, lookup);
        int version = bindings.fvmt_abi_version();
        if (version != FVMT_ABI_VERSION) {
            throw new NativeLibraryException(libraryName + " implements fastvmt.h ABI version " + version
                    + " but these bindings expect version " + FVMT_ABI_VERSION);
        }
        return bindings;
    }

    /** The name the library was loaded under (for messages). */
    public String libraryName() {
        return libraryName;
    }

    public int fvmt_abi_version() {
        try {
            return (int) abiVersion.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public MemorySegment fvmt_build_name() {
        try {
            return (MemorySegment) buildName.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public MemorySegment fvmt_status_message(int status) {
        try {
            return (MemorySegment) statusMessage.invokeExact(status);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public MemorySegment fvmt_last_error() {
        try {
            return (MemorySegment) lastError.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_supports_dtype(int dtype) {
        try {
            return (int) supportsDtype.invokeExact(dtype);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_runtime_check() {
        try {
            return (int) runtimeCheck.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_count_nonfinite(MemorySegment x, int dtype, long n, MemorySegment count,
            MemorySegment stream) {
        try {
            return (int) countNonfinite.invokeExact(x, dtype, n, count, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_amf_full_workspace_bytes(int frames, int height, int width, int channels, int pairCount) {
        try {
            return (long) amfFullWorkspaceBytes.invokeExact(frames, height, width, channels, pairCount);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_amf_full_forward(MemorySegment q, MemorySegment k, int dtype,
            int frames, int height, int width, int channels, int heads, float temperature,
            MemorySegment pairs, int pairCount,
            MemorySegment delta,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) amfFullForward.invokeExact(q, k, dtype, frames, height, width, channels, heads,
                    temperature, pairs, pairCount, delta, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_amf_full_backward(MemorySegment q, MemorySegment k, int dtype,
            int frames, int height, int width, int channels, int heads, float temperature,
            MemorySegment pairs, int pairCount,
            MemorySegment dDelta, MemorySegment dq, MemorySegment dk,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) amfFullBackward.invokeExact(q, k, dtype, frames, height, width, channels, heads,
                    temperature, pairs, pairCount, dDelta, dq, dk, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_amf_window_workspace_bytes(int frames, int height, int width, int channels,
            int tileH, int tileW, int window, int pairCount) {
        try {
            return (long) amfWindowWorkspaceBytes.invokeExact(frames, height, width, channels, tileH, tileW,
                    window, pairCount);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_amf_window_forward(MemorySegment q, MemorySegment k, int dtype,
            int frames, int height, int width, int channels, int heads, float temperature,
            int tileH, int tileW, int window,
            MemorySegment pairs, int pairCount,
            MemorySegment delta, MemorySegment windowOrigins,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) amfWindowForward.invokeExact(q, k, dtype, frames, height, width, channels, heads,
                    temperature, tileH, tileW, window, pairs, pairCount, delta, windowOrigins, workspace,
                    workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_amf_window_backward(MemorySegment q, MemorySegment k, int dtype,
            int frames, int height, int width, int channels, int heads, float temperature,
            int tileH, int tileW, int window,
            MemorySegment pairs, int pairCount,
            MemorySegment windowOrigins,
            MemorySegment dDelta, MemorySegment dq, MemorySegment dk,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) amfWindowBackward.invokeExact(q, k, dtype, frames, height, width, channels, heads,
                    temperature, tileH, tileW, window, pairs, pairCount, windowOrigins, dDelta, dq, dk,
                    workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_window_loss_workspace_bytes(int pairCount, int tokensPerFrame) {
        try {
            return (long) windowLossWorkspaceBytes.invokeExact(pairCount, tokensPerFrame);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_window_loss_forward(MemorySegment deltaRef, MemorySegment deltaGen,
            MemorySegment pairWeights, int pairCount, int tokensPerFrame, MemorySegment loss,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) windowLossForward.invokeExact(deltaRef, deltaGen, pairWeights, pairCount,
                    tokensPerFrame, loss, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_window_loss_backward(MemorySegment deltaRef, MemorySegment deltaGen,
            MemorySegment pairWeights, int pairCount, int tokensPerFrame, float lossGrad,
            MemorySegment dDeltaGen, MemorySegment stream) {
        try {
            return (int) windowLossBackward.invokeExact(deltaRef, deltaGen, pairWeights, pairCount,
                    tokensPerFrame, lossGrad, dDeltaGen, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_tracking_loss_workspace_bytes(int frames, int height, int width, int channels,
            int tileH, int tileW, int pairCount) {
        try {
            return (long) trackingLossWorkspaceBytes.invokeExact(frames, height, width, channels, tileH, tileW,
                    pairCount);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_tracking_loss_forward(MemorySegment k, int dtype,
            int frames, int height, int width, int channels, int tileH, int tileW, int window,
            MemorySegment pairs, int pairCount,
            MemorySegment windowOrigins, MemorySegment loss,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) trackingLossForward.invokeExact(k, dtype, frames, height, width, channels, tileH,
                    tileW, window, pairs, pairCount, windowOrigins, loss, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_tracking_loss_backward(MemorySegment k, int dtype,
            int frames, int height, int width, int channels, int tileH, int tileW, int window,
            MemorySegment pairs, int pairCount,
            MemorySegment windowOrigins, float lossGrad,
            MemorySegment dk,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) trackingLossBackward.invokeExact(k, dtype, frames, height, width, channels, tileH,
                    tileW, window, pairs, pairCount, windowOrigins, lossGrad, dk, workspace, workspaceBytes,
                    stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_adamw_step(MemorySegment param, MemorySegment freshGrad, MemorySegment gradCache,
            MemorySegment expAvg, MemorySegment expAvgSq, long n,
            float lr, float beta1, float beta2, float eps, float weightDecay, int step, MemorySegment stream) {
        try {
            return (int) adamwStep.invokeExact(param, freshGrad, gradCache, expAvg, expAvgSq, n, lr, beta1,
                    beta2, eps, weightDecay, step, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_column_reduction_workspace_bytes(long rows, int cols) {
        try {
            return (long) columnReductionWorkspaceBytes.invokeExact(rows, cols);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_bf16_to_f32(MemorySegment src, MemorySegment dst, long n, MemorySegment stream) {
        try {
            return (int) bf16ToF32.invokeExact(src, dst, n, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_add_scaled(MemorySegment x, float alpha, MemorySegment y, long n, MemorySegment stream) {
        try {
            return (int) addScaled.invokeExact(x, alpha, y, n, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_bias_add_forward(MemorySegment x, MemorySegment bias, long rows, int cols,
            MemorySegment y, MemorySegment stream) {
        try {
            return (int) biasAddForward.invokeExact(x, bias, rows, cols, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_bias_add_backward(MemorySegment dy, long rows, int cols, MemorySegment dbias,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) biasAddBackward.invokeExact(dy, rows, cols, dbias, workspace, workspaceBytes,
                    stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_layer_norm_forward(MemorySegment x, MemorySegment gamma, MemorySegment beta, long rows,
            int cols, float eps, MemorySegment y, MemorySegment stream) {
        try {
            return (int) layerNormForward.invokeExact(x, gamma, beta, rows, cols, eps, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_layer_norm_backward(MemorySegment x, MemorySegment gamma, MemorySegment dy, long rows,
            int cols, float eps, MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) layerNormBackward.invokeExact(x, gamma, dy, rows, cols, eps, dx, dgamma, dbeta,
                    workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_rms_norm_forward(MemorySegment x, MemorySegment weight, long rows, int cols, float eps,
            MemorySegment y, MemorySegment stream) {
        try {
            return (int) rmsNormForward.invokeExact(x, weight, rows, cols, eps, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_rms_norm_backward(MemorySegment x, MemorySegment weight, MemorySegment dy, long rows,
            int cols, float eps, MemorySegment dx, MemorySegment dweight, MemorySegment workspace,
            long workspaceBytes, MemorySegment stream) {
        try {
            return (int) rmsNormBackward.invokeExact(x, weight, dy, rows, cols, eps, dx, dweight, workspace,
                    workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_modulate_forward(MemorySegment x, MemorySegment shift, MemorySegment scale, long rows,
            int cols, MemorySegment y, MemorySegment stream) {
        try {
            return (int) modulateForward.invokeExact(x, shift, scale, rows, cols, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_modulate_backward(MemorySegment x, MemorySegment scale, MemorySegment dy, long rows,
            int cols, MemorySegment dx, MemorySegment dshift, MemorySegment dscale, MemorySegment workspace,
            long workspaceBytes, MemorySegment stream) {
        try {
            return (int) modulateBackward.invokeExact(x, scale, dy, rows, cols, dx, dshift, dscale,
                    workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_gated_residual_forward(MemorySegment x, MemorySegment y, MemorySegment gate, long rows,
            int cols, MemorySegment out, MemorySegment stream) {
        try {
            return (int) gatedResidualForward.invokeExact(x, y, gate, rows, cols, out, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_gated_residual_backward(MemorySegment y, MemorySegment gate, MemorySegment dOut,
            long rows, int cols, MemorySegment dx, MemorySegment dy, MemorySegment dgate,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) gatedResidualBackward.invokeExact(y, gate, dOut, rows, cols, dx, dy, dgate,
                    workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_gelu_tanh_forward(MemorySegment x, long n, MemorySegment y, MemorySegment stream) {
        try {
            return (int) geluTanhForward.invokeExact(x, n, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_gelu_tanh_backward(MemorySegment x, MemorySegment dy, long n, MemorySegment dx,
            MemorySegment stream) {
        try {
            return (int) geluTanhBackward.invokeExact(x, dy, n, dx, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_silu_forward(MemorySegment x, long n, MemorySegment y, MemorySegment stream) {
        try {
            return (int) siluForward.invokeExact(x, n, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_silu_backward(MemorySegment x, MemorySegment dy, long n, MemorySegment dx,
            MemorySegment stream) {
        try {
            return (int) siluBackward.invokeExact(x, dy, n, dx, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_rope3d_forward(MemorySegment x, int frames, int height, int width, int heads,
            int headDim, float theta, MemorySegment y, MemorySegment stream) {
        try {
            return (int) rope3dForward.invokeExact(x, frames, height, width, heads, headDim, theta, y,
                    stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_rope3d_backward(MemorySegment dy, int frames, int height, int width, int heads,
            int headDim, float theta, MemorySegment dx, MemorySegment stream) {
        try {
            return (int) rope3dBackward.invokeExact(dy, frames, height, width, heads, headDim, theta, dx,
                    stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_timestep_embedding_forward(MemorySegment timesteps, int count, int dim, MemorySegment out,
            MemorySegment stream) {
        try {
            return (int) timestepEmbeddingForward.invokeExact(timesteps, count, dim, out, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_timestep_embedding_backward(MemorySegment timesteps, int count, int dim, MemorySegment dOut,
            MemorySegment dt, MemorySegment stream) {
        try {
            return (int) timestepEmbeddingBackward.invokeExact(timesteps, count, dim, dOut, dt, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_patchify(MemorySegment latent, int channels, int frames, int height, int width, int pt,
            int ph, int pw, int layout, MemorySegment tokens, MemorySegment stream) {
        try {
            return (int) patchify.invokeExact(latent, channels, frames, height, width, pt, ph, pw, layout,
                    tokens, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_unpatchify(MemorySegment tokens, int channels, int frames, int height, int width,
            int pt, int ph, int pw, int layout, MemorySegment latent, MemorySegment stream) {
        try {
            return (int) unpatchify.invokeExact(tokens, channels, frames, height, width, pt, ph, pw, layout,
                    latent, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_attention_workspace_bytes(int qTokens, int kvTokens, int heads, int headDim) {
        try {
            return (long) attentionWorkspaceBytes.invokeExact(qTokens, kvTokens, heads, headDim);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_attention_forward(MemorySegment q, MemorySegment k, MemorySegment v, int qTokens,
            int kvTokens, int heads, int headDim, float scale, MemorySegment out, MemorySegment lse,
            MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) attentionForward.invokeExact(q, k, v, qTokens, kvTokens, heads, headDim, scale,
                    out, lse, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_attention_backward(MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment out,
            MemorySegment lse, MemorySegment dOut, int qTokens, int kvTokens, int heads, int headDim,
            float scale, MemorySegment dq, MemorySegment dk, MemorySegment dv, MemorySegment workspace,
            long workspaceBytes, MemorySegment stream) {
        try {
            return (int) attentionBackward.invokeExact(q, k, v, out, lse, dOut, qTokens, kvTokens, heads,
                    headDim, scale, dq, dk, dv, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_mul_forward(MemorySegment a, MemorySegment b, long n, MemorySegment y, MemorySegment stream) {
        try {
            return (int) mulForward.invokeExact(a, b, n, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long fvmt_embedding_workspace_bytes() {
        try {
            return (long) embeddingWorkspaceBytes.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_embedding_forward(MemorySegment ids, int count, MemorySegment table, int dtype, int vocab,
            int dim, MemorySegment out, MemorySegment workspace, long workspaceBytes, MemorySegment stream) {
        try {
            return (int) embeddingForward.invokeExact(ids, count, table, dtype, vocab, dim, out, workspace,
                    workspaceBytes, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_relative_attention_forward(MemorySegment q, MemorySegment k, MemorySegment v,
            MemorySegment relBias, MemorySegment keyMask, int qTokens, int kvTokens, int heads, int headDim,
            float scale, MemorySegment out, MemorySegment stream) {
        try {
            return (int) relativeAttentionForward.invokeExact(q, k, v, relBias, keyMask, qTokens, kvTokens, heads,
                    headDim, scale, out, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------- video autoencoder ops

    public int fvmt_im2col3d(MemorySegment x, int frames, int height, int width, int channels, int kt, int kh,
            int kw, int st, int sh, int sw, int padT0, int padT1, int padH0, int padH1, int padW0, int padW1,
            long rowBegin, long rowCount, MemorySegment rows, MemorySegment stream) {
        try {
            return (int) im2col3d.invokeExact(x, frames, height, width, channels, kt, kh, kw, st, sh, sw, padT0,
                    padT1, padH0, padH1, padW0, padW1, rowBegin, rowCount, rows, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_upsample_nearest2x(MemorySegment x, int images, int height, int width, int channels,
            MemorySegment y, MemorySegment stream) {
        try {
            return (int) upsampleNearest2x.invokeExact(x, images, height, width, channels, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_frame_interleave(MemorySegment x, int frames, long pixels, int channels, MemorySegment y,
            MemorySegment stream) {
        try {
            return (int) frameInterleave.invokeExact(x, frames, pixels, channels, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fvmt_softmax_rows_forward(MemorySegment x, long rows, int cols, float scale, MemorySegment y,
            MemorySegment stream) {
        try {
            return (int) softmaxRowsForward.invokeExact(x, rows, cols, scale, y, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException runtime) {
            return runtime;
        }
        if (t instanceof Error error) {
            throw error;
        }
        return new IllegalStateException("native call failed", t);
    }
}

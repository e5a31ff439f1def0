package model

// The defaults of the transformers config classes (transformers 4.4x), used for fields
// that a config.json leaves out.

func intPtr(v int) *int { return &v }

func llamaDefaults() Config {
	return Config{
		ModelType: "llama", VocabSize: 32000, HiddenSize: 4096, IntermediateSize: 11008,
		NumHiddenLayers: 32, NumAttentionHeads: 32, HiddenAct: "silu",
		MaxPositionEmbeddings: 2048, InitializerRange: 0.02, RMSNormEps: 1e-6,
		RopeTheta: 10000, BOSTokenID: TokenIDs{1}, EOSTokenID: TokenIDs{2},
	}
}

func qwen2Defaults() Config {
	return Config{
		ModelType: "qwen2", VocabSize: 151936, HiddenSize: 4096, IntermediateSize: 22016,
		NumHiddenLayers: 32, NumAttentionHeads: 32, NumKeyValueHeads: 32, HiddenAct: "silu",
		MaxPositionEmbeddings: 32768, InitializerRange: 0.02, RMSNormEps: 1e-6,
		RopeTheta: 10000, SlidingWindow: intPtr(4096), MaxWindowLayers: 28,
	}
}

func mistralDefaults() Config {
	return Config{
		ModelType: "mistral", VocabSize: 32000, HiddenSize: 4096, IntermediateSize: 14336,
		NumHiddenLayers: 32, NumAttentionHeads: 32, NumKeyValueHeads: 8, HiddenAct: "silu",
		MaxPositionEmbeddings: 4096 * 32, InitializerRange: 0.02, RMSNormEps: 1e-6,
		RopeTheta: 10000, SlidingWindow: intPtr(4096), BOSTokenID: TokenIDs{1}, EOSTokenID: TokenIDs{2},
	}
}

func phi3Defaults() Config {
	return Config{
		ModelType: "phi3", VocabSize: 32064, HiddenSize: 3072, IntermediateSize: 8192,
		NumHiddenLayers: 32, NumAttentionHeads: 32, HiddenAct: "silu",
		MaxPositionEmbeddings: 4096, InitializerRange: 0.02, RMSNormEps: 1e-5,
		RopeTheta: 10000, PartialRotaryFactor: 1, BOSTokenID: TokenIDs{1},
		EOSTokenID: TokenIDs{32000}, PadTokenID: TokenIDs{32000},
	}
}

func bertDefaults() Config {
	return Config{
		ModelType: "bert", VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12,
		NumAttentionHeads: 12, IntermediateSize: 3072, HiddenAct: "gelu",
		HiddenDropoutProb: 0.1, AttentionProbsDropoutProb: 0.1, MaxPositionEmbeddings: 512,
		TypeVocabSize: 2, InitializerRange: 0.02, LayerNormEps: 1e-12, PadTokenID: TokenIDs{0},
		PositionEmbeddingType: "absolute", TieWordEmbeddings: true,
	}
}

func robertaDefaults() Config {
	c := bertDefaults()
	c.ModelType = "roberta"
	c.PadTokenID, c.BOSTokenID, c.EOSTokenID = TokenIDs{1}, TokenIDs{0}, TokenIDs{2}
	return c
}

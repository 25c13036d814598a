import {
  curlSnippet,
  formatCount,
  formatLatency,
  formatRate,
  predictUrl,
  pythonGrpcSnippet,
  pythonRestSnippet,
  sparklinePath,
  stateKind
} from '../format';

describe('formatRate', () => {
  it.each([
    [0, '0/s'],
    [-1, '0/s'],
    [NaN, '0/s'],
    [0.25, '0.25/s'],
    [0.5, '0.5/s'],
    [3.44, '3.4/s'],
    [3, '3/s'],
    [42.4, '42/s'],
    [1234, '1.2k/s'],
    [56789, '57k/s']
  ])('%p -> %p', (rps, text) => {
    expect(formatRate(rps)).toBe(text);
  });
});

describe('formatLatency', () => {
  it.each([
    [null, '–'],
    [undefined, '–'],
    [NaN, '–'],
    [0.421, '0.42 ms'],
    [12.34, '12.3 ms'],
    [7, '7 ms'],
    [250.4, '250 ms'],
    [1250, '1.25 s'],
    [2000, '2 s']
  ])('%p -> %p', (ms, text) => {
    expect(formatLatency(ms)).toBe(text);
  });
});

describe('formatCount', () => {
  it('groups thousands with thin spaces', () => {
    expect(formatCount(1234567)).toBe('1\u2009234\u2009567');
    expect(formatCount(999)).toBe('999');
  });
});

describe('stateKind', () => {
  it('classifies TF Serving states', () => {
    expect(stateKind('AVAILABLE')).toBe('ok');
    expect(stateKind('LOADING')).toBe('busy');
    expect(stateKind('UNLOADING')).toBe('busy');
    expect(stateKind('START')).toBe('busy');
    expect(stateKind('END')).toBe('idle');
    expect(stateKind('END', 'Could not load the SavedModel')).toBe('error');
    expect(stateKind('AVAILABLE', 'boom')).toBe('error');
  });
});

describe('sparklinePath', () => {
  const box = { width: 100, height: 12, pad: 1 };

  it('draws nothing without values', () => {
    expect(sparklinePath([], box)).toBe('');
    expect(sparklinePath([1], { width: 0, height: 10 })).toBe('');
  });

  it('draws a flat line for one value', () => {
    expect(sparklinePath([5], box)).toBe('M0,1 L100,1');
  });

  it('spreads points over the width and scales to the maximum', () => {
    expect(sparklinePath([0, 5, 10], box)).toBe('M0,11 L50,6 L100,1');
  });

  it('keeps an all-zero series on the baseline', () => {
    expect(sparklinePath([0, 0], box)).toBe('M0,11 L100,11');
  });

  it('clamps to a fixed maximum and treats bad values as zero', () => {
    expect(sparklinePath([20, NaN, -3], { ...box, max: 10 })).toBe(
      'M0,1 L50,11 L100,11'
    );
  });
});

describe('snippets', () => {
  const target = {
    model: 'half_plus_two',
    host: '0.0.0.0',
    restPort: 8501,
    grpcPort: 8500
  };

  it('builds TF Serving predict URLs', () => {
    expect(predictUrl(target)).toBe(
      'http://127.0.0.1:8501/v1/models/half_plus_two:predict'
    );
    expect(predictUrl({ ...target, version: 123 })).toBe(
      'http://127.0.0.1:8501/v1/models/half_plus_two/versions/123:predict'
    );
    expect(predictUrl({ ...target, label: 'canary', host: 'localhost' })).toBe(
      'http://localhost:8501/v1/models/half_plus_two/labels/canary:predict'
    );
  });

  it('makes a runnable curl command', () => {
    expect(curlSnippet(target)).toBe(
      [
        'curl -s -X POST http://127.0.0.1:8501/v1/models/half_plus_two:predict \\',
        "  -H 'Content-Type: application/json' \\",
        String.raw`  -d '{"instances":[1,2,5]}'`
      ].join('\n')
    );
  });

  it("escapes single quotes in curl's body", () => {
    expect(curlSnippet({ ...target, instances: ["it's"] })).toContain(
      String.raw`-d '{"instances":["it'\''s"]}'`
    );
  });

  it('makes a Python requests snippet with Python literals', () => {
    const code = pythonRestSnippet({
      ...target,
      instances: [{ a: true, b: null }]
    });
    expect(code).toContain(
      'url = "http://127.0.0.1:8501/v1/models/half_plus_two:predict"'
    );
    expect(code).toContain('json={"instances": [{"a":True,"b":None}]}');
    expect(code).toContain('print(response.json()["predictions"])');
  });

  it('makes a gRPC snippet on the gRPC port, pinning a version when asked', () => {
    const code = pythonGrpcSnippet({ ...target, version: 123 }, 'x');
    expect(code).toContain('grpc.insecure_channel("127.0.0.1:8500")');
    expect(code).toContain('request.model_spec.name = "half_plus_two"');
    expect(code).toContain('request.model_spec.version.value = 123');
    expect(code).toContain(
      'request.inputs["x"].CopyFrom(tf.make_tensor_proto([1,2,5], dtype=tf.float32))'
    );
    expect(pythonGrpcSnippet({ ...target, label: 'stable' })).toContain(
      'request.model_spec.version_label = "stable"'
    );
  });
});

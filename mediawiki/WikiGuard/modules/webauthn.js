/**
 * WebAuthn helpers shared by the security page and the login form. The accounts door writes
 * binary values in its options as unpadded base64url and reads the browser's answers in the
 * same form; the browser wants and gives ArrayBuffers.
 */
'use strict';

/**
 * @param {string} text unpadded base64url
 * @return {Uint8Array}
 */
function toBytes( text ) {
	var b64 = String( text ).replace( /-/g, '+' ).replace( /_/g, '/' ),
		binary, bytes, i;
	while ( b64.length % 4 ) {
		b64 += '=';
	}
	binary = atob( b64 );
	bytes = new Uint8Array( binary.length );
	for ( i = 0; i < binary.length; i++ ) {
		bytes[ i ] = binary.charCodeAt( i );
	}
	return bytes;
}

/**
 * @param {ArrayBuffer|null} buffer
 * @return {string|null} unpadded base64url
 */
function toText( buffer ) {
	var bytes, binary = '', i;
	if ( !buffer ) {
		return null;
	}
	bytes = new Uint8Array( buffer );
	for ( i = 0; i < bytes.length; i++ ) {
		binary += String.fromCharCode( bytes[ i ] );
	}
	return btoa( binary ).replace( /\+/g, '-' ).replace( /\//g, '_' ).replace( /=+$/, '' );
}

/**
 * A copy of a JSON value without null members (the browser refuses null where it wants a
 * dictionary or a string) and without empty `extensions` lists (PHP turns `{}` into `[]`).
 *
 * @param {*} value
 * @return {*}
 */
function clean( value ) {
	var out, key;
	if ( Array.isArray( value ) ) {
		return value.map( clean );
	}
	if ( value === null || typeof value !== 'object' ) {
		return value;
	}
	out = {};
	for ( key in value ) {
		if ( Object.prototype.hasOwnProperty.call( value, key ) && value[ key ] !== null &&
			!( key === 'extensions' && Array.isArray( value[ key ] ) )
		) {
			out[ key ] = clean( value[ key ] );
		}
	}
	return out;
}

/**
 * @param {Object[]|undefined} list credential descriptors with base64url ids
 * @return {Object[]}
 */
function descriptors( list ) {
	return ( list || [] ).map( function ( c ) {
		var copy = clean( c );
		copy.id = toBytes( c.id );
		return copy;
	} );
}

/**
 * @param {Object} options the door's answer to register/begin ({publicKey: …})
 * @return {Object} for navigator.credentials.create's publicKey
 */
function creationOptions( options ) {
	var pk = clean( options.publicKey );
	pk.challenge = toBytes( pk.challenge );
	pk.user.id = toBytes( pk.user.id );
	pk.excludeCredentials = descriptors( pk.excludeCredentials );
	return pk;
}

/**
 * @param {Object} options the door's answer to login/begin ({publicKey: …})
 * @return {Object} for navigator.credentials.get's publicKey
 */
function requestOptions( options ) {
	var pk = clean( options.publicKey );
	pk.challenge = toBytes( pk.challenge );
	pk.allowCredentials = descriptors( pk.allowCredentials );
	return pk;
}

/**
 * @param {PublicKeyCredential} credential from navigator.credentials.create
 * @return {Object} JSON for register/finish
 */
function encodeRegistration( credential ) {
	return {
		id: credential.id,
		rawId: toText( credential.rawId ),
		type: credential.type,
		response: {
			attestationObject: toText( credential.response.attestationObject ),
			clientDataJSON: toText( credential.response.clientDataJSON )
		},
		extensions: {}
	};
}

/**
 * @param {PublicKeyCredential} credential from navigator.credentials.get
 * @return {Object} JSON for login/finish
 */
function encodeAssertion( credential ) {
	return {
		id: credential.id,
		rawId: toText( credential.rawId ),
		type: credential.type,
		response: {
			authenticatorData: toText( credential.response.authenticatorData ),
			clientDataJSON: toText( credential.response.clientDataJSON ),
			signature: toText( credential.response.signature ),
			userHandle: toText( credential.response.userHandle )
		},
		extensions: {}
	};
}

/**
 * @return {boolean} the browser can use passkeys here
 */
function supported() {
	return !!( window.PublicKeyCredential && navigator.credentials &&
		navigator.credentials.create && navigator.credentials.get && window.isSecureContext !== false );
}

/**
 * The text for a failure of an API call (code, result) or of the browser (an Error).
 *
 * @param {*} error
 * @param {Object} [result]
 * @return {string}
 */
function failure( error, result ) {
	if ( result && result.error && result.error.info ) {
		return mw.msg( 'wikiguard-passkey-failed', result.error.info );
	}
	if ( error && error.name === 'NotAllowedError' ) {
		return mw.msg( 'wikiguard-passkey-cancelled' );
	}
	return mw.msg( 'wikiguard-passkey-failed', error && error.message ? error.message : String( error ) );
}

module.exports = {
	supported: supported,
	creationOptions: creationOptions,
	requestOptions: requestOptions,
	encodeRegistration: encodeRegistration,
	encodeAssertion: encodeAssertion,
	failure: failure
};

#!/usr/bin/env ruby
# frozen_string_literal: true

# Decodes license keys the way the gitlab-license gem's `Gitlab::License.import` does, with the
# same Ruby primitives (Base64.decode64, JSON.parse, OpenSSL public_decrypt with PKCS#1 padding,
# AES-128-CBC, Date.parse), so that keys issued by gitlab-license-server can be checked against
# Ruby's own implementations rather than ours.
#
# Usage: gem_compat_decode.rb PUBLIC_KEY.pem LICENSE_FILE...
# Prints one JSON object per file: {"file", "valid", "error"?, "starts_at", "expires_at",
# "licensee", "restrictions"}. Exits 0 when every file decoded to a valid license, 1 otherwise.

require 'base64'
require 'date'
require 'json'
require 'openssl'

# The armor rules of the gem: keep what follows the last BEGIN line and precedes the END line.
BEGIN_LINE = /(\A|\r?\n)-*BEGIN .+? LICENSE-*\r?\n/.freeze
END_LINE = /\r?\n-*END .+? LICENSE-*(\r?\n|\z)/.freeze

def strip_armor(text)
  after_begin = text.split(BEGIN_LINE).last
  raise 'empty license' if after_begin.nil?

  after_begin.split(END_LINE).first
end

def decrypt(text, public_key)
  envelope = JSON.parse(Base64.decode64(text.chomp))
  raise 'envelope field missing' unless %w[data key iv].all? { |field| envelope[field] }

  aes_key = public_key.public_decrypt(Base64.decode64(envelope['key']))
  cipher = OpenSSL::Cipher.new('aes-128-cbc')
  cipher.decrypt
  cipher.key = aes_key
  cipher.iv = Base64.decode64(envelope['iv'])
  cipher.update(Base64.decode64(envelope['data'])) + cipher.final
end

def date_attribute(attributes, name)
  value = attributes[name]
  value = (Date.parse(value) rescue nil) if value.is_a?(String)
  value || nil
end

def team_member?(licensee)
  licensee['Company'].to_s.match?(/gitlab/i) &&
    (licensee['Email'].to_s.end_with?('@gitlab.com') || licensee['Email'].to_s.end_with?('@jihulab.com'))
end

def load_license(payload)
  attributes = JSON.parse(payload)
  version = attributes['version'] || 1
  raise 'Version is too new' unless version == 1

  licensee = attributes['licensee']
  starts_at = date_attribute(attributes, 'issued_at')
  expires_at = date_attribute(attributes, 'expires_at')
  restrictions = attributes['restrictions'].is_a?(Hash) ? attributes['restrictions'] : nil
  valid = licensee.is_a?(Hash) && !licensee.empty? &&
          starts_at.is_a?(Date) &&
          (expires_at.nil? ? team_member?(licensee) : expires_at.is_a?(Date)) &&
          %w[notify_admins_at notify_users_at block_changes_at].all? do |name|
            value = date_attribute(attributes, name)
            value.nil? || value.is_a?(Date)
          end
  {
    'valid' => valid,
    'starts_at' => starts_at.is_a?(Date) ? starts_at.iso8601 : nil,
    'expires_at' => expires_at.is_a?(Date) ? expires_at.iso8601 : nil,
    'licensee' => licensee,
    'restrictions' => restrictions
  }
end

public_key = OpenSSL::PKey::RSA.new(File.read(ARGV.fetch(0)))
all_valid = true
ARGV.drop(1).each do |path|
  result =
    begin
      load_license(decrypt(strip_armor(File.read(path)), public_key))
    rescue StandardError => e
      { 'valid' => false, 'error' => "#{e.class}: #{e.message.dup.force_encoding('UTF-8').scrub('?')}" }
    end
  all_valid &&= result['valid']
  puts JSON.generate({ 'file' => path }.merge(result))
end
exit(all_valid ? 0 : 1)
